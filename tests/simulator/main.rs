//! The Rekognition simulator driven by the real `aws-sdk-rekognition` client, over loopback HTTP.
//!
//! Each test starts its own simulator on `127.0.0.1:0` with the seed from [`helpers`], so tests share nothing.

mod copies;
mod errors;
mod helpers;
mod observation;
mod pagination;
mod projects;
mod seed_file;
mod wire;
