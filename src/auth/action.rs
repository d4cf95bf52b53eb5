//! The actions a principal may be allowed, one per RPC.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    CopyModelVersion,
    GetCopy,
    ListCopies,
    CancelCopy,
    WatchCopy,
}

impl Action {
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
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rpc_from_its_path() {
        assert_eq!(
            Action::from_path("/modelcopy.v1.ModelCopy/WatchCopy"),
            Some(Action::WatchCopy)
        );
        assert_eq!(Action::from_path("/modelcopy.v1.ModelCopy/Nope"), None);
        assert_eq!(Action::from_path("/other.Service/GetCopy"), None);
        assert_eq!(Action::from_path("GetCopy"), None);
    }
}
