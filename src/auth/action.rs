//! The actions a principal may be allowed, one per RPC.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    CopyModelVersion,
    GetCopy,
    ListCopies,
    CancelCopy,
    WatchCopy,
    /// Reading the audit log: ListAuditEvents, and SummarizeAudit, which reads the same records aggregated (counts
    /// per principal and account reveal as much as the records they count).
    ListAuditEvents,
}

impl Action {
    /// The action's name in policies: `ModelCopy::Action::"GetCopy"`.
    pub fn name(self) -> &'static str {
        match self {
            Action::CopyModelVersion => "CopyModelVersion",
            Action::GetCopy => "GetCopy",
            Action::ListCopies => "ListCopies",
            Action::CancelCopy => "CancelCopy",
            Action::WatchCopy => "WatchCopy",
            Action::ListAuditEvents => "ListAuditEvents",
        }
    }

    /// The action of a gRPC path such as `/modelcopy.v1.ModelCopy/GetCopy`; `None` for paths of no RPC.
    pub fn from_path(path: &str) -> Option<Action> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if service != "modelcopy.v1.ModelCopy" {
            return None;
        }
        Some(match method {
            "CopyModelVersion" => Action::CopyModelVersion,
            "GetCopy" => Action::GetCopy,
            "ListCopies" => Action::ListCopies,
            "CancelCopy" => Action::CancelCopy,
            "WatchCopy" => Action::WatchCopy,
            "ListAuditEvents" | "SummarizeAudit" => Action::ListAuditEvents,
            // A rollout is authorized copy by copy, with the copies' own actions (`api::rollouts`).
            "CreateRollout" => Action::CopyModelVersion,
            "GetRollout" => Action::GetCopy,
            "ListRollouts" => Action::ListCopies,
            "CancelRollout" => Action::CancelCopy,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rpc_from_its_path() {
        assert_eq!(Action::from_path("/modelcopy.v1.ModelCopy/WatchCopy"), Some(Action::WatchCopy));
        assert_eq!(Action::from_path("/modelcopy.v1.ModelCopy/ListAuditEvents"), Some(Action::ListAuditEvents));
        assert_eq!(Action::from_path("/modelcopy.v1.ModelCopy/SummarizeAudit"), Some(Action::ListAuditEvents));
        assert_eq!(Action::from_path("/modelcopy.v1.ModelCopy/Nope"), None);
        assert_eq!(Action::from_path("/other.Service/GetCopy"), None);
        assert_eq!(Action::from_path("GetCopy"), None);
    }
}
