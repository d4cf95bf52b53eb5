//! Code generated from `proto/modelcopy/v1/modelcopy.proto`.
#![allow(clippy::all, missing_docs)]

pub mod v1 {
    tonic::include_proto!("modelcopy.v1");
}
pub use v1::*;
