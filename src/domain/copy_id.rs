//! A copy's identifier: a UUIDv7, so ids sort by creation time and index well.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CopyId(Uuid);

impl CopyId {
    pub fn new() -> Self {
        CopyId(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Uuid::parse_str(s).map(CopyId).map_err(|_| DomainError("must be a copy id (a UUID such as 0193c1a2-…)".into()))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for CopyId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for CopyId {
    fn from(id: Uuid) -> Self {
        CopyId(id)
    }
}

impl FromStr for CopyId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CopyId::parse(s)
    }
}

impl fmt::Display for CopyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        let id = CopyId::new();
        assert_eq!(CopyId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn refuses_what_is_not_a_uuid() {
        assert!(CopyId::parse("").is_err());
        assert!(CopyId::parse("copy-1").is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = CopyId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(CopyId::new() > first);
    }
}
