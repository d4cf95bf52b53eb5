//! Code generated from `proto/modelcopy/v1/modelcopy.proto`.
#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("modelcopy.v1");
}
pub use v1::*;

/// The API's descriptors, as server reflection serves them.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("modelcopy_descriptor");
