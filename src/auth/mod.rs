//! Who is calling, and may they. Every call passes [`layer::AuthLayer`], which authenticates it, before it reaches
//! a handler. Whether the caller may do what it asks depends on what it asks about (a copy's route, its owner), so
//! handlers ask the [`Authorizer`] once the request is validated, through `Call::authorize`
//! ([`crate::api::context`]). The authorizer is a Cedar policy set read from files ([`PolicyStore`]); deny by default.
//!
//! Callers are established by [`chain`]: bearer JWTs ([`jwt`]) and/or client certificates ([`mtls`], verified by the
//! TLS set up in [`tls`]), as `[auth]` configures them ([`settings`], which also holds `[authz]`). Trusting the principal a caller names
//! ([`DevMetadataAuthenticator`]) happens only in the development mode that must be asked for by name.

pub mod action;
pub mod authenticator;
pub mod authorizer;
pub mod chain;
pub mod jwks;
pub mod jwt;
pub mod layer;
pub mod mtls;
pub mod policies;
pub mod policy_store;
pub mod principal;
pub mod reload;
pub mod resource;
pub mod settings;
pub mod tls;
pub mod visibility;

pub use action::Action;
pub use authenticator::{AuthError, Authenticator, DevMetadataAuthenticator};
pub use authorizer::{Authorizer, AuthzDecision};
pub use layer::{AuthLayer, Authenticated};
pub use policies::{Policies, PolicyError};
pub use policy_store::{PolicyStore, ReloadStatus};
pub use principal::{Principal, PrincipalKind};
pub use resource::Resource;
pub use settings::{AuthMode, AuthSettings, AuthzSettings, JwtSettings, TlsSettings};
pub use visibility::Visibility;
