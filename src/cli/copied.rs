//! The flags that describe a copied version, shared by `copy` and `rollout create` (where every destination takes
//! them): its name, where Rekognition writes its results, its tags, its KMS key and when it is deleted.

use std::collections::BTreeMap;

use clap::Args;

use super::{parse_duration, parse_tag};
use crate::proto::OutputConfig;

#[derive(Debug, Args)]
pub struct CopiedVersionArgs {
    /// Name of the copied version (in every destination, for a rollout).
    #[arg(long)]
    pub version_name: String,
    /// Bucket where Rekognition writes the copied model's training and evaluation results.
    #[arg(long)]
    pub s3_bucket: String,
    /// Key prefix within that bucket.
    #[arg(long)]
    pub s3_key_prefix: Option<String>,
    /// A tag for the copied version, as key=value (repeat for more).
    #[arg(long = "tag", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// KMS key (id, ARN, alias or alias ARN) that encrypts the copied model.
    #[arg(long)]
    pub kms_key_id: Option<String>,
    /// Delete the copied version this long after the copy succeeds: 90s, 30m, 12h, 7d (a running model is not
    /// stopped: the deletion is refused and reported on the copy).
    #[arg(long, value_parser = parse_duration)]
    pub delete_after: Option<prost_types::Duration>,
}

impl CopiedVersionArgs {
    pub fn output_config(&self) -> OutputConfig {
        OutputConfig {
            s3_bucket: self.s3_bucket.clone(),
            s3_key_prefix: self.s3_key_prefix.clone().unwrap_or_default(),
        }
    }

    /// The tags as the request's map; a key given twice is an error (the map would silently keep only the last
    /// value).
    pub fn tag_map(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut map = BTreeMap::new();
        for (key, value) in &self.tags {
            if map.insert(key.clone(), value.clone()).is_some() {
                anyhow::bail!("tag {key:?} is given more than once");
            }
        }
        Ok(map)
    }
}
