//! What a call acts on, as authorization sees it: the facts a policy may test, taken from the validated request or
//! the stored copy (never from raw input, so a policy never decides on something that is not well-formed).

use crate::domain::{CopyId, CopyRequest};
use crate::store::CopyJob;

/// The resource of one authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A copy: the one being asked for (CopyModelVersion), or a stored one (get, list, watch, cancel).
    Copy(CopyResource),
    /// The audit log (ListAuditEvents, SummarizeAudit).
    AuditLog,
}

/// A copy's route and owner: what policies about copies decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResource {
    /// `None` for a copy not made yet.
    pub id: Option<CopyId>,
    /// The principal who asked for the copy.
    pub owner: String,
    pub source_account: String,
    pub destination_account: String,
    pub region: String,
    pub source_project: String,
    pub destination_project: String,
}

impl Resource {
    /// The copy `owner` is asking for.
    pub fn requested_copy(request: &CopyRequest, owner: &str) -> Resource {
        Resource::Copy(CopyResource::of(None, request, owner))
    }

    /// A stored copy.
    pub fn copy(job: &CopyJob) -> Resource {
        Resource::Copy(CopyResource::of(Some(job.id), &job.request, &job.principal))
    }
}

impl CopyResource {
    fn of(id: Option<CopyId>, request: &CopyRequest, owner: &str) -> CopyResource {
        CopyResource {
            id,
            owner: owner.to_owned(),
            source_account: request.source_account().as_str().to_owned(),
            destination_account: request.destination_account().as_str().to_owned(),
            region: request.region().as_str().to_owned(),
            source_project: request.source_project().project_name().to_owned(),
            destination_project: request.destination_project().project_name().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::tests_support::job;

    #[test]
    fn a_stored_copy_carries_its_route_and_owner() {
        let job = job();
        let Resource::Copy(copy) = Resource::copy(&job) else { panic!("a copy") };
        assert_eq!(copy.id, Some(job.id));
        assert_eq!(copy.owner, "alice");
        assert_eq!((copy.source_account.as_str(), copy.destination_account.as_str()), ("111111111111", "222222222222"));
        assert_eq!((copy.source_project.as_str(), copy.destination_project.as_str()), ("p", "q"));
        assert_eq!(copy.region, "us-east-1");
    }
}
