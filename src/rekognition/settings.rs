//! `[accounts.<id>]`: how to reach Rekognition in one AWS account (region, endpoint, credentials) and the quotas
//! the service keeps to there, across all of its replicas.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub region: String,
    /// Overrides Rekognition's endpoint (the simulator, a VPC endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Static credentials; without them, the default AWS credential chain is used.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// A role to assume in that account, starting from the credentials above or the default chain.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The `ExternalId` the role's trust policy asks for, if any.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The role session's name, which CloudTrail shows for every call made with the role ("modelcopy" if unset).
    #[serde(default)]
    pub role_session_name: Option<String>,
    /// Overrides STS's endpoint for AssumeRole (a VPC endpoint, the simulator).
    #[serde(default)]
    pub sts_endpoint_url: Option<String>,
    /// How fast, and how much at once, the service may ask Rekognition in this account.
    #[serde(default)]
    pub limits: AccountLimits,
}

/// An account's Rekognition quotas as the service keeps to them, across all of its replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountLimits {
    /// CopyProjectVersion calls per second.
    pub copy_per_second: f64,
    /// DescribeProjectVersions calls per second.
    pub describe_per_second: f64,
    /// DeleteProjectVersion calls per second (expired copies' deletions).
    pub delete_per_second: f64,
    /// Calls that may go at once after a quiet spell. 1 keeps every one-second window at or under the rate.
    pub burst: u32,
    /// Copies submitted or in progress at once.
    pub max_in_progress: u32,
    /// Queued copies beyond which CopyModelVersion answers RESOURCE_EXHAUSTED.
    pub max_queued: u32,
    /// Headroom kept below each rate (0.02 = calls 2% further apart than the rate allows). Calls are paced by the
    /// previous call's answer (see `dispatch::gate`), which already keeps them apart as Rekognition receives them;
    /// this is headroom on top, for a clock that runs a little fast or a quota counted a little early.
    pub pacing_margin: f64,
}

impl AccountLimits {
    /// The most calls per second a rate may name. Rekognition's quotas for these management calls are a few per
    /// second, raised on request to tens at most; a rate far above that is a typo (or `inf`, which would stop the
    /// account's pacing dead), refused when the settings load.
    pub const MAX_RATE: f64 = 1_000.0;
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            copy_per_second: 2.0,
            describe_per_second: 5.0,
            delete_per_second: 1.0,
            burst: 1,
            max_in_progress: 10,
            max_queued: 10_000,
            pacing_margin: 0.02,
        }
    }
}
