//! The Rekognition simulator driven by the real `aws-sdk-rekognition` client, over loopback HTTP.
//!
//! Each test starts its own simulator on `127.0.0.1:0` with the seed from [`helpers`], so tests share nothing.

#[path = "../support/mod.rs"]
mod support;

mod copies;
mod delete_version;
mod errors;
mod faults;
mod helpers;
mod observation;
mod pagination;
mod policies;
mod projects;
mod quotas;
mod reproducibility;
mod scale;
mod seed_file;
mod signatures;
mod wire;
