//! How long a copied version is kept once its copy succeeded: the service's `delete_after`, AWS Backup's
//! `Lifecycle.DeleteAfterDays` for model copies.
//!
//! Whole seconds, so that what is stored (`copy_jobs.delete_after_secs`), hashed into the request's digest and
//! shown back are the same number; a fraction of a second is refused rather than rounded, since a rounded value
//! would make a retry with the caller's own value look like another request. At least a second (a copy deleted the
//! moment it lands is no copy), at most 36,500 days (a hundred years: beyond that "keep it" is meant, which is the
//! field left out).

use std::time::Duration;

use super::DomainError;

/// A duration of whole seconds between [`DeleteAfter::MIN`] and [`DeleteAfter::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeleteAfter(u64);

impl DeleteAfter {
    pub const MIN_SECS: u64 = 1;
    pub const MAX_SECS: u64 = 36_500 * 24 * 3600;

    /// From a protobuf `Duration`'s two parts, as the caller sent them.
    pub fn parse(seconds: i64, nanos: i32) -> Result<DeleteAfter, DomainError> {
        if nanos != 0 {
            return Err(DomainError("must be whole seconds".into()));
        }
        match u64::try_from(seconds) {
            Ok(secs) if (Self::MIN_SECS..=Self::MAX_SECS).contains(&secs) => Ok(DeleteAfter(secs)),
            _ => Err(DomainError(format!(
                "must be between {} second and {} days (got {seconds} s)",
                Self::MIN_SECS,
                Self::MAX_SECS / 86_400
            ))),
        }
    }

    /// From a stored number of seconds.
    pub fn from_secs(secs: i64) -> Result<DeleteAfter, DomainError> {
        Self::parse(secs, 0)
    }

    pub fn as_secs(self) -> u64 {
        self.0
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

/// As protobuf's JSON writes a Duration: `"3600s"`.
impl std::fmt::Display for DeleteAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl serde::Serialize for DeleteAfter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_in_range_are_kept() {
        assert_eq!(DeleteAfter::parse(1, 0).unwrap().as_secs(), 1);
        assert_eq!(DeleteAfter::parse(7 * 86_400, 0).unwrap().as_duration(), Duration::from_secs(604_800));
        assert_eq!(DeleteAfter::parse(DeleteAfter::MAX_SECS as i64, 0).unwrap().to_string(), "3153600000s");
    }

    #[test]
    fn zero_negative_too_long_and_fractions_are_refused() {
        for (seconds, nanos) in [(0, 0), (-5, 0), (DeleteAfter::MAX_SECS as i64 + 1, 0), (i64::MAX, 0)] {
            let err = DeleteAfter::parse(seconds, nanos).unwrap_err();
            assert!(err.0.contains("between 1 second and 36500 days"), "{seconds}: {err}");
        }
        assert_eq!(DeleteAfter::parse(10, 500_000_000).unwrap_err().0, "must be whole seconds");
        assert_eq!(DeleteAfter::parse(0, 1).unwrap_err().0, "must be whole seconds");
    }

    #[test]
    fn a_stored_value_goes_through_the_same_rules() {
        assert!(DeleteAfter::from_secs(0).is_err());
        assert_eq!(DeleteAfter::from_secs(60).unwrap(), DeleteAfter::parse(60, 0).unwrap());
    }
}
