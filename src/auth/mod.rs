//! Who is calling, and may they: every call passes [`layer::AuthLayer`] before it reaches a handler.
//!
//! Authentication and authorization are traits so that the development stand-ins here (the principal named in
//! metadata, allow-all) can be replaced by mTLS / JWT and Cedar policies without touching a handler.

pub mod action;
pub mod authenticator;
pub mod authorizer;
pub mod layer;
pub mod principal;

pub use action::Action;
pub use authenticator::{Authenticator, DevMetadataAuthenticator};
pub use authorizer::{AllowAll, Authorizer, AuthzDecision};
pub use layer::AuthLayer;
pub use principal::Principal;
