//! The hash that chains audit rows: what exactly is hashed, defined once, for the writer and the verifier alike.
//! It sits in the store because the store computes it on every append, under the chain's lock; the verifier, a
//! floor above, calls the same function.
//!
//! A row's hash is SHA-256 over a canonical encoding of everything the row says (every column but `hash` itself),
//! including its `id`, its time in microseconds and `prev_hash`, the hash of the row before it. Changing any of it
//! changes the hash; the next row's `prev_hash` then no longer matches, unless every later row is rewritten too.
//!
//! The encoding is **versioned** (a tag names it, so a new column means a new version, never a silent change of
//! meaning) and **length-prefixed** (each field says how long it is, so no two different rows encode to the same
//! bytes, however their text is split). Each field is `0x00` for NULL, or `0x01`, its length in 4 bytes big-endian,
//! and its bytes:
//!
//! | # | field | bytes |
//! |---|---|---|
//! | 1 | version tag | UTF-8 of [`ENCODING_V1`] |
//! | 2 | id | 8, big-endian |
//! | 3 | occurred_at | 8, big-endian microseconds since 1970-01-01T00:00:00Z (PostgreSQL's precision) |
//! | 4–10 | principal, authn, peer, rpc, decision, reason, grpc_code | UTF-8 (grpc_code as [`super::grpc_code`] spells it) |
//! | 11 | request | UTF-8 of PostgreSQL's text of the jsonb value (`request::text`), its one canonical printing |
//! | 12 | request_digest | as stored |
//! | 13 | copy_id | 16, the UUID's bytes |
//! | 14 | policy_ids | count in 4 bytes big-endian, then each id as length (4 bytes) and UTF-8 |
//! | 15 | prev_hash | as stored (32 bytes, or NULL for the first row) |
//!
//! The migration that chained the rows already written (`migrations/20261123000003_audit_chain.sql`) holds the SQL
//! twin of [`encode`]; a service test checks that both agree.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use uuid::Uuid;

/// The tag of the encoding below; part of every hash.
pub const ENCODING_V1: &str = "modelcopy.audit_log.v1";

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Everything an audit row says, as stored: the input of its hash.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RowContent {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub principal: Option<String>,
    pub authn: String,
    pub peer: Option<String>,
    pub rpc: String,
    pub decision: String,
    pub reason: Option<String>,
    pub grpc_code: String,
    /// The request as PostgreSQL prints its jsonb (`request::text`).
    pub request: Option<String>,
    pub request_digest: Option<Vec<u8>>,
    pub copy_id: Option<Uuid>,
    pub policy_ids: Vec<String>,
    pub prev_hash: Option<Vec<u8>>,
}

/// The canonical bytes of `row` (encoding v1, see the module documentation).
pub fn encode(row: &RowContent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    field(&mut out, Some(ENCODING_V1.as_bytes()));
    field(&mut out, Some(&row.id.to_be_bytes()));
    field(&mut out, Some(&row.occurred_at.timestamp_micros().to_be_bytes()));
    for text in [
        row.principal.as_deref(),
        Some(row.authn.as_str()),
        row.peer.as_deref(),
        Some(row.rpc.as_str()),
        Some(row.decision.as_str()),
        row.reason.as_deref(),
        Some(row.grpc_code.as_str()),
        row.request.as_deref(),
    ] {
        field(&mut out, text.map(str::as_bytes));
    }
    field(&mut out, row.request_digest.as_deref());
    field(&mut out, row.copy_id.as_ref().map(|id| id.as_bytes().as_slice()));
    let mut ids = Vec::new();
    ids.extend_from_slice(&length(row.policy_ids.len()));
    for id in &row.policy_ids {
        ids.extend_from_slice(&length(id.len()));
        ids.extend_from_slice(id.as_bytes());
    }
    field(&mut out, Some(&ids));
    field(&mut out, row.prev_hash.as_deref());
    out
}

/// The hash a row with this content must carry.
pub fn hash(row: &RowContent) -> Hash {
    Sha256::digest(encode(row)).into()
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&length(bytes.len()));
            out.extend_from_slice(bytes);
        }
    }
}

/// A length as 4 bytes big-endian. Nothing in a row comes near 4 GiB (PostgreSQL caps a field at 1 GB).
fn length(len: usize) -> [u8; 4] {
    u32::try_from(len).expect("an audit field longer than 4 GiB").to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RowContent {
        RowContent {
            id: 7,
            occurred_at: DateTime::from_timestamp_micros(1_763_900_000_123_456).unwrap(),
            principal: Some("alice".into()),
            authn: "dev-metadata".into(),
            peer: None,
            rpc: "GetCopy".into(),
            decision: "ALLOWED".into(),
            reason: None,
            grpc_code: "Ok".into(),
            request: Some(r#"{"copy_id": "x"}"#.into()),
            request_digest: None,
            copy_id: None,
            policy_ids: vec![],
            prev_hash: Some(vec![0xab; 32]),
        }
    }

    #[test]
    fn the_encoding_is_exactly_the_documented_bytes() {
        let row = RowContent {
            id: 1,
            occurred_at: DateTime::from_timestamp_micros(2).unwrap(),
            principal: None,
            authn: "a".into(),
            peer: None,
            rpc: "R".into(),
            decision: "D".into(),
            reason: None,
            grpc_code: "Ok".into(),
            request: None,
            request_digest: None,
            copy_id: None,
            policy_ids: vec!["p".into()],
            prev_hash: None,
        };
        let mut expected = vec![1, 0, 0, 0, 22];
        expected.extend_from_slice(b"modelcopy.audit_log.v1");
        expected.extend_from_slice(&[1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&[1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2]);
        expected.push(0); // principal
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b'a']);
        expected.push(0); // peer
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b'R']);
        expected.extend_from_slice(&[1, 0, 0, 0, 1, b'D']);
        expected.push(0); // reason
        expected.extend_from_slice(&[1, 0, 0, 0, 2, b'O', b'k']);
        expected.extend_from_slice(&[0, 0, 0]); // request, request_digest, copy_id
        expected.extend_from_slice(&[1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, b'p']);
        expected.push(0); // prev_hash
        assert_eq!(encode(&row), expected);
    }

    #[test]
    fn every_field_is_in_the_hash() {
        let base = hash(&row());
        let changes: Vec<fn(&mut RowContent)> = vec![
            |r| r.id += 1,
            |r| r.occurred_at += chrono::Duration::microseconds(1),
            |r| r.principal = None,
            |r| r.authn.push('x'),
            |r| r.peer = Some("127.0.0.1:1".into()),
            |r| r.rpc = "ListCopies".into(),
            |r| r.decision = "DENIED".into(),
            |r| r.reason = Some(String::new()),
            |r| r.grpc_code = "NotFound".into(),
            |r| r.request = None,
            |r| r.request_digest = Some(vec![]),
            |r| r.copy_id = Some(Uuid::nil()),
            |r| r.policy_ids.push(String::new()),
            |r| r.prev_hash = None,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = row();
            change(&mut changed);
            assert_ne!(hash(&changed), base, "change {i} left the hash as it was");
        }
    }

    #[test]
    fn null_and_empty_differ() {
        let mut empty = row();
        empty.reason = Some(String::new());
        assert_ne!(encode(&empty), encode(&row()));
    }

    #[test]
    fn moving_text_between_fields_changes_the_encoding() {
        // Without lengths, "ab" + "" and "a" + "b" would read the same.
        let mut one = row();
        one.policy_ids = vec!["ab".into(), String::new()];
        let mut other = row();
        other.policy_ids = vec!["a".into(), "b".into()];
        assert_ne!(encode(&one), encode(&other));

        let mut one = row();
        (one.authn, one.rpc) = ("dev-metadataG".into(), "etCopy".into());
        assert_ne!(encode(&one), encode(&row()));
    }

    #[test]
    fn the_hash_is_sha256_of_the_encoding() {
        let row = row();
        let expected: Hash = Sha256::digest(encode(&row)).into();
        assert_eq!(hash(&row), expected);
        assert_eq!(hash(&row), hash(&row.clone()));
    }
}
