//! A model version's status, and how a copy's status moves with time.
//!
//! Real copies take minutes and are followed by polling `DescribeProjectVersions`. The simulator does not run
//! background tasks for them: a copy records when it will end and how, and its status is computed from the clock
//! whenever it is described. That keeps the state a plain value and makes the outcome depend only on the time asked.

/// botocore's `ProjectVersionStatus` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    TrainingInProgress,
    TrainingCompleted,
    TrainingFailed,
    Starting,
    Running,
    Failed,
    Stopping,
    Stopped,
    Deleting,
    CopyingInProgress,
    CopyingCompleted,
    CopyingFailed,
    Deprecated,
    Expired,
}

impl VersionStatus {
    pub const ALL: [VersionStatus; 14] = [
        VersionStatus::TrainingInProgress,
        VersionStatus::TrainingCompleted,
        VersionStatus::TrainingFailed,
        VersionStatus::Starting,
        VersionStatus::Running,
        VersionStatus::Failed,
        VersionStatus::Stopping,
        VersionStatus::Stopped,
        VersionStatus::Deleting,
        VersionStatus::CopyingInProgress,
        VersionStatus::CopyingCompleted,
        VersionStatus::CopyingFailed,
        VersionStatus::Deprecated,
        VersionStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::TrainingInProgress => "TRAINING_IN_PROGRESS",
            VersionStatus::TrainingCompleted => "TRAINING_COMPLETED",
            VersionStatus::TrainingFailed => "TRAINING_FAILED",
            VersionStatus::Starting => "STARTING",
            VersionStatus::Running => "RUNNING",
            VersionStatus::Failed => "FAILED",
            VersionStatus::Stopping => "STOPPING",
            VersionStatus::Stopped => "STOPPED",
            VersionStatus::Deleting => "DELETING",
            VersionStatus::CopyingInProgress => "COPYING_IN_PROGRESS",
            VersionStatus::CopyingCompleted => "COPYING_COMPLETED",
            VersionStatus::CopyingFailed => "COPYING_FAILED",
            VersionStatus::Deprecated => "DEPRECATED",
            VersionStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// How a copy ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOutcome {
    Completes,
    Fails { message: String },
}

/// Where a version's status comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// A seeded version: its status never changes.
    Fixed(VersionStatus),
    /// A copy: `COPYING_IN_PROGRESS` until `done_at_millis`, then its outcome.
    Copy { done_at_millis: i64, outcome: CopyOutcome },
}

impl Lifecycle {
    /// The status and status message as seen at `now_millis`.
    pub fn status_at(&self, now_millis: i64) -> (VersionStatus, Option<String>) {
        match self {
            Lifecycle::Fixed(status) => (*status, None),
            Lifecycle::Copy { done_at_millis, .. } if now_millis < *done_at_millis => {
                (VersionStatus::CopyingInProgress, Some("The model version is being copied.".to_owned()))
            }
            Lifecycle::Copy { outcome: CopyOutcome::Completes, .. } => {
                (VersionStatus::CopyingCompleted, Some("The model version copy is complete.".to_owned()))
            }
            Lifecycle::Copy { outcome: CopyOutcome::Fails { message }, .. } => {
                (VersionStatus::CopyingFailed, Some(message.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in VersionStatus::ALL {
            assert_eq!(VersionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(VersionStatus::parse("DONE"), None);
    }

    #[test]
    fn fixed_status_never_moves() {
        let lifecycle = Lifecycle::Fixed(VersionStatus::TrainingCompleted);
        assert_eq!(lifecycle.status_at(i64::MAX).0, VersionStatus::TrainingCompleted);
    }

    #[test]
    fn copy_is_in_progress_until_its_end() {
        let lifecycle = Lifecycle::Copy { done_at_millis: 1_000, outcome: CopyOutcome::Completes };
        assert_eq!(lifecycle.status_at(999).0, VersionStatus::CopyingInProgress);
        assert_eq!(lifecycle.status_at(1_000).0, VersionStatus::CopyingCompleted);
    }

    #[test]
    fn failing_copy_ends_failed_with_its_message() {
        let outcome = CopyOutcome::Fails { message: "boom".into() };
        let lifecycle = Lifecycle::Copy { done_at_millis: 1_000, outcome };
        assert_eq!(lifecycle.status_at(0).0, VersionStatus::CopyingInProgress);
        assert_eq!(lifecycle.status_at(2_000), (VersionStatus::CopyingFailed, Some("boom".into())));
    }
}
