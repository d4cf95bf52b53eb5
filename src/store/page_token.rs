//! ListCopies' and ListRollouts' page token: the position (created_at, id) of the last copy (or rollout) of the
//! previous page.
//!
//! Keyset paging stays correct while copies are added, and costs the same on page 1 and page 1000.

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub created_at: DateTime<Utc>,
    /// The copy's or rollout's id.
    pub id: Uuid,
}

const PREFIX: &str = "v1.";

impl PageToken {
    /// Everything created before `instant` (the nil id sorts before every other at the same instant): a position
    /// that names no copy.
    pub fn before(instant: DateTime<Utc>) -> PageToken {
        PageToken { created_at: instant, id: Uuid::nil() }
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}{}.{}", self.created_at.timestamp_micros(), self.id.simple())
    }

    pub fn decode(token: &str) -> Option<PageToken> {
        let (micros, id) = token.strip_prefix(PREFIX)?.split_once('.')?;
        Some(PageToken {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_database_precision() {
        let token = PageToken {
            created_at: DateTime::from_timestamp_micros(1_763_900_000_123_456).unwrap(),
            id: crate::domain::CopyId::new().as_uuid(),
        };
        assert_eq!(PageToken::decode(&token.encode()), Some(token));
    }

    #[test]
    fn refuses_what_it_did_not_make() {
        for bad in ["", "v1.", "v1.abc.def", "v2.1.00000000000000000000000000000000", "1.2"] {
            assert_eq!(PageToken::decode(bad), None, "{bad}");
        }
    }
}
