//! What the layers around a handler established for its call.

use tonic::{Request, Status};

use crate::audit::AuditSlot;
use crate::auth::Principal;

pub struct Call {
    pub principal: Principal,
    pub audit: AuditSlot,
}

impl Call {
    /// The caller and audit slot the auth and audit layers put on the request. Their absence means the service was
    /// assembled without those layers, which must never answer a request.
    pub fn of<T>(request: &Request<T>) -> Result<Call, Status> {
        let principal = request.extensions().get::<Principal>().cloned();
        let audit = request.extensions().get::<AuditSlot>().cloned();
        match (principal, audit) {
            (Some(principal), Some(audit)) => Ok(Call { principal, audit }),
            _ => Err(Status::internal(
                "request reached a handler without authentication and audit",
            )),
        }
    }
}
