//! Code generated from `proto/modelcopy/v1/modelcopy.proto` (messages and client), and the server generated from
//! build.rs's list of the same methods.
#![allow(clippy::all, missing_docs)]

pub mod encoded;

pub mod v1 {
    tonic::include_proto!("modelcopy.v1");
    include!(concat!(env!("OUT_DIR"), "/modelcopy.v1.ModelCopy.rs"));
}
pub use v1::*;

/// The API's descriptors, as server reflection serves them.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("modelcopy_descriptor");
