//! modelcopy: a gRPC front door to Amazon Rekognition Custom Labels model copies.
//!
//! The module tree follows a request's path: it enters [`api`], is authenticated and authorized in [`auth`],
//! stored with its [`audit`] record in [`store`], picked up by [`dispatch`], sent through [`rekognition`], followed
//! until it ends, and fanned out to clients in [`watch`]. The Rekognition [`simulator`] lives apart from the service.

pub mod proto;
