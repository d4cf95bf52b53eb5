//! One Rekognition client per AWS account, built once from the settings.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_rekognition::config::retry::RetryConfig;
use aws_sdk_rekognition::config::timeout::TimeoutConfig;
use aws_sdk_rekognition::config::Region;
use aws_sdk_rekognition::Client;

use super::AccountSettings;
use crate::domain::AccountId;

#[derive(Clone, Default)]
pub struct Clients {
    by_account: HashMap<AccountId, Client>,
}

impl Clients {
    pub async fn from_settings<'a>(
        accounts: impl IntoIterator<Item = (&'a AccountId, &'a AccountSettings)>,
        timeout: Duration,
    ) -> Clients {
        let mut by_account = HashMap::new();
        for (account, settings) in accounts {
            by_account.insert(account.clone(), build(settings, timeout).await);
        }
        Clients { by_account }
    }

    /// The client that acts in `account`, if the service is configured for it.
    pub fn for_account(&self, account: &AccountId) -> Option<&Client> {
        self.by_account.get(account)
    }
}

async fn build(settings: &AccountSettings, timeout: Duration) -> Client {
    let region = Region::new(settings.region.clone());
    let mut shared = aws_config::defaults(BehaviorVersion::latest()).region(region.clone());
    if let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        shared = shared.credentials_provider(Credentials::new(key, secret, None, None, "modelcopy-settings"));
    }
    let shared = shared.load().await;

    let mut config =
        aws_sdk_rekognition::config::Builder::from(&shared).retry_config(RetryConfig::disabled()).timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(timeout)
                .connect_timeout(Duration::from_secs(5).min(timeout))
                .build(),
        );
    if let Some(role) = &settings.role_arn {
        let mut sts = shared.to_builder();
        if let Some(endpoint) = &settings.sts_endpoint_url {
            sts = sts.endpoint_url(endpoint);
        }
        let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(settings.role_session_name.as_deref().unwrap_or("modelcopy"))
            .configure(&sts.build());
        if let Some(external_id) = &settings.external_id {
            provider = provider.external_id(external_id);
        }
        config = config.credentials_provider(provider.build().await);
    }
    if let Some(endpoint) = &settings.endpoint_url {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}
