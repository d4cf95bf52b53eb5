//! Verification of the audit chain (`modelcopy audit verify`): walks every row in id order and names the first one
//! that breaks the chain, and why.
//!
//! Three things can break it, checked in this order for each row:
//! - **content altered**: the row's hash is not the hash of what it records (someone changed the row and left its
//!   hash, or changed the hash);
//! - **missing rows**: its id is not the one after the previous row's. Ids are given out one by one under the
//!   chain's lock, from 1, so a gap is a row that was there and is gone;
//! - **link broken**: its `prev_hash` is not the previous row's hash (someone rewrote the previous row together with
//!   its hash, or this row's link).
//!
//! What verification cannot see: rows removed from the *end* of the log, or the whole log rewritten from some row
//! on, by someone who can write the table as a superuser. Against those, keep the last hash it prints somewhere
//! else (a ticket, another system's log) and compare later: the chain proves everything before a known hash.
//!
//! Rows are read in batches by id, so memory stays flat however long the log is, and no long transaction is held.
//! Rows appended during the walk are checked too: they commit in id order.

use std::fmt;

use crate::store::audit::chain::{self, Hash};
use crate::store::{audit, AuditRow, Store, StoreError};

/// Rows read per query.
const BATCH: i64 = 1000;

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        rows: u64,
        /// The last row's id and hash: what to keep elsewhere.
        last: Option<(i64, Hash)>,
    },
    Broken {
        /// The first row at which the chain does not hold.
        at: i64,
        problem: Break,
        /// Rows before it, all intact.
        rows_before: u64,
    },
}

/// Why the chain breaks at a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    ContentAltered,
    MissingRows {
        first: i64,
        last: i64,
    },
    /// `previous` is the row it should have linked to; `None` when it is the first row yet names a predecessor.
    LinkBroken {
        previous: Option<i64>,
    },
}

impl Verdict {
    /// The process exit code: 0 intact, 1 broken.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Intact { .. } => 0,
            Verdict::Broken { .. } => 1,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Intact { rows, last: None } => write!(f, "audit chain intact: {rows} rows"),
            Verdict::Intact { rows, last: Some((id, hash)) } => {
                write!(f, "audit chain intact: {rows} rows; last row {id}, hash {}", hex::encode(hash))
            }
            Verdict::Broken { at, problem, rows_before } => {
                write!(f, "audit chain broken at row {at}: {problem} ({rows_before} rows before it are intact)")
            }
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::ContentAltered => {
                write!(f, "content altered: its hash is not the hash of what it records")
            }
            Break::MissingRows { first, last } if first == last => {
                write!(f, "missing row: row {first} is gone (id gap)")
            }
            Break::MissingRows { first, last } => {
                write!(f, "missing rows: rows {first} to {last} are gone (id gap)")
            }
            Break::LinkBroken { previous: Some(previous) } => write!(
                f,
                "link broken: its prev_hash is not the hash of row {previous} (that row was rewritten with a new \
                 hash, or this link was)"
            ),
            Break::LinkBroken { previous: None } => {
                write!(f, "link broken: it is the first row, yet its prev_hash names an earlier one")
            }
        }
    }
}

/// Walks the whole chain in `store`.
pub async fn verify(store: &Store) -> Result<Verdict, StoreError> {
    let mut walk = Walk::default();
    loop {
        let batch = audit::chain_batch(store, walk.last_id.unwrap_or(0), BATCH).await?;
        if batch.is_empty() {
            return Ok(walk.intact());
        }
        for row in &batch {
            if let Err(broken) = walk.step(row) {
                return Ok(broken);
            }
        }
    }
}

/// The state of a walk along the chain: what the next row must link to.
#[derive(Debug, Default)]
struct Walk {
    rows: u64,
    last_id: Option<i64>,
    last_hash: Option<Hash>,
}

impl Walk {
    /// Checks the next row (in id order) and moves past it, or says how it breaks the chain.
    fn step(&mut self, row: &AuditRow) -> Result<(), Verdict> {
        let content = &row.content;
        let broken = |problem| Verdict::Broken { at: content.id, problem, rows_before: self.rows };
        let hash = chain::hash(content);
        if row.hash != hash {
            return Err(broken(Break::ContentAltered));
        }
        let expected_id = self.last_id.map_or(1, |id| id + 1);
        if content.id != expected_id {
            return Err(broken(Break::MissingRows { first: expected_id, last: content.id - 1 }));
        }
        if content.prev_hash.as_deref() != self.last_hash.as_ref().map(|h| h.as_slice()) {
            return Err(broken(Break::LinkBroken { previous: self.last_id }));
        }
        self.rows += 1;
        self.last_id = Some(content.id);
        self.last_hash = Some(hash);
        Ok(())
    }

    fn intact(&self) -> Verdict {
        Verdict::Intact { rows: self.rows, last: self.last_id.zip(self.last_hash) }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::audit::chain::RowContent;

    /// A chain of `n` rows, ids 1..=n, correctly linked.
    fn chain_of(n: i64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for id in 1..=n {
            let content = RowContent {
                id,
                occurred_at: DateTime::<Utc>::from_timestamp_micros(1_763_900_000_000_000 + id).unwrap(),
                principal: Some("alice".into()),
                authn: "dev-metadata".into(),
                peer: None,
                rpc: "GetCopy".into(),
                decision: "ALLOWED".into(),
                reason: Some(format!("call {id}")),
                grpc_code: "Ok".into(),
                request: None,
                request_digest: None,
                copy_id: None,
                policy_ids: vec![],
                prev_hash: rows.last().map(|r| r.hash.clone()),
            };
            let hash = chain::hash(&content).to_vec();
            rows.push(AuditRow { content, hash });
        }
        rows
    }

    fn walk(rows: &[AuditRow]) -> Verdict {
        let mut walk = Walk::default();
        for row in rows {
            if let Err(broken) = walk.step(row) {
                return broken;
            }
        }
        walk.intact()
    }

    fn rehash(row: &mut AuditRow) {
        row.hash = chain::hash(&row.content).to_vec();
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        let rows = chain_of(5);
        let verdict = walk(&rows);
        assert_eq!(verdict, Verdict::Intact { rows: 5, last: Some((5, rows[4].hash.clone().try_into().unwrap())) });
        assert_eq!(verdict.exit_code(), 0);
        assert!(verdict.to_string().starts_with("audit chain intact: 5 rows; last row 5, hash "));
        assert_eq!(walk(&[]).to_string(), "audit chain intact: 0 rows");
    }

    #[test]
    fn an_altered_row_is_named() {
        let mut rows = chain_of(5);
        rows[2].content.reason = Some("nothing to see".into());
        let verdict = walk(&rows);
        assert_eq!(verdict, Verdict::Broken { at: 3, problem: Break::ContentAltered, rows_before: 2 });
        assert_eq!(verdict.exit_code(), 1);
    }

    #[test]
    fn a_rewritten_and_rehashed_row_breaks_the_next_link() {
        let mut rows = chain_of(5);
        rows[2].content.decision = "DENIED".into();
        rehash(&mut rows[2]);
        assert_eq!(
            walk(&rows),
            Verdict::Broken { at: 4, problem: Break::LinkBroken { previous: Some(3) }, rows_before: 3 }
        );
    }

    #[test]
    fn a_removed_row_is_a_gap() {
        let mut rows = chain_of(5);
        rows.remove(2);
        let verdict = walk(&rows);
        assert_eq!(
            verdict,
            Verdict::Broken { at: 4, problem: Break::MissingRows { first: 3, last: 3 }, rows_before: 2 }
        );
        assert_eq!(
            verdict.to_string(),
            "audit chain broken at row 4: missing row: row 3 is gone (id gap) (2 rows before it are intact)"
        );
    }

    #[test]
    fn removed_first_rows_are_a_gap_too() {
        let rows = chain_of(5);
        assert_eq!(
            walk(&rows[2..]),
            Verdict::Broken { at: 3, problem: Break::MissingRows { first: 1, last: 2 }, rows_before: 0 }
        );
    }

    #[test]
    fn a_first_row_that_names_a_predecessor_is_a_broken_link() {
        let mut rows = chain_of(1);
        rows[0].content.prev_hash = Some(vec![0; 32]);
        rehash(&mut rows[0]);
        assert_eq!(
            walk(&rows),
            Verdict::Broken { at: 1, problem: Break::LinkBroken { previous: None }, rows_before: 0 }
        );
    }
}
