//! Spawns the real service for a test: this process's PostgreSQL cluster with a fresh database, the Rekognition
//! simulator on a loopback port, and the application on another, talking to each other over the network.

use std::path::PathBuf;
use std::time::Duration;

use modelcopy::admission::AdmissionSettings;
use modelcopy::auth::{AuthMode, AuthSettings};
use modelcopy::cli::connect::Client;
use modelcopy::config::{AccountLimits, AccountSettings, Settings};
use modelcopy::proto;
use modelcopy::simulator::{self, Quotas, Seed, SeedAccount, SeedProjectPolicy, SimConfig, SimHandle};
use modelcopy::startup::Application;
use sqlx::PgPool;

use crate::support::proxy::Proxy;
use crate::support::{self, account, account_secret, DEST_PROJECT, SOURCE_PROJECT};
pub use crate::support::{DEST_ACCOUNT, REGION, SOURCE_ACCOUNT};

pub struct TestApp {
    pub app: Option<Application>,
    pub endpoint: String,
    pub pool: PgPool,
    pub database_url: String,
    pub sim: SimHandle,
    pub seed: Seed,
    pub settings: Settings,
    /// The policy file the app reads (and reloads when it changes).
    pub policy_file: PathBuf,
}

pub struct Options {
    pub copy_duration: Duration,
    pub dispatch: bool,
    /// Every account's queue limit, when not the default.
    pub max_queued: Option<u32>,
    /// Every account's copies in progress at once, when not the default.
    pub max_in_progress: Option<u32>,
    /// How callers authenticate; dev mode (the principal named in metadata) unless a test says otherwise.
    pub auth: AuthSettings,
    /// The Cedar policies in force (the text of one file); deploy/policies/dev.cedar (permit everything) if `None`.
    pub policies: Option<String>,
    /// An OTLP/gRPC collector to export traces to (none by default).
    pub otlp_endpoint: Option<String>,
    /// The CA the collector's certificate is checked against (`otlp_ca_file`), for an https `otlp_endpoint`.
    pub otlp_ca_file: Option<PathBuf>,
    /// The database to serve from (its URL, and a pool on it): a fresh one in the tests' cluster if `None`.
    pub database: Option<(String, sqlx::PgPool)>,
    /// `database_timeout_ms`, when not the default.
    pub database_timeout: Option<Duration>,
    /// `[admission]`, when not the default.
    pub admission: Option<AdmissionSettings>,
    /// The quotas the simulator enforces (none by default).
    pub quotas: Quotas,
    /// A role of the destination account the service assumes there (through the simulator's STS) instead of
    /// using the account's key directly; the seed has one role there, [`DEST_ROLE`].
    pub assume_role: Option<&'static str>,
    /// `[watch]`, when not the default.
    pub watch: Option<modelcopy::watch::WatchSettings>,
    /// `request_timeout_ms`, when not the default.
    pub request_timeout: Option<Duration>,
    /// Whether metrics are served for Prometheus (`[telemetry] metrics_listen_addr` on a loopback port). The
    /// pipeline is the process's: only the first service of the test process that asks installs it.
    pub metrics: bool,
    /// Whether `grpc.health.v1` is also served alone, in plaintext, on a port of its own (`health_listen_addr`).
    pub health_port: bool,
    /// `[web]`, when not the default.
    pub web: Option<modelcopy::web::WebSettings>,
    /// More destination accounts (12-digit ids), each with its own `detector-prod` project, a key, and a policy on
    /// the source project that lets it copy from there, as [`DEST_ACCOUNT`] has (at most four: a project holds
    /// five policies).
    pub more_destinations: Vec<&'static str>,
    /// Of `more_destinations`, those the source project's policies do not let copy.
    pub without_policy: Vec<&'static str>,
    /// Seeded accounts the service holds no settings (credentials) for.
    pub unconfigured: Vec<&'static str>,
    /// `[preflight]`; off unless a test asks (it adds Rekognition calls that other tests count).
    pub preflight: Option<modelcopy::preflight::PreflightSettings>,
}

/// The destination account's one role in the simulator.
pub const DEST_ROLE: &str = "modelcopy";

impl Default for Options {
    fn default() -> Self {
        Options {
            copy_duration: Duration::from_millis(300),
            dispatch: true,
            max_queued: None,
            max_in_progress: None,
            auth: AuthSettings { mode: AuthMode::DevMetadata, ..AuthSettings::default() },
            policies: None,
            otlp_endpoint: None,
            otlp_ca_file: None,
            database: None,
            database_timeout: None,
            admission: None,
            quotas: Quotas::default(),
            assume_role: None,
            health_port: false,
            metrics: false,
            request_timeout: None,
            watch: None,
            web: None,
            more_destinations: Vec::new(),
            without_policy: Vec::new(),
            unconfigured: Vec::new(),
            preflight: None,
        }
    }
}

/// The source account's `detector` with v1 and v2, and the destination account's empty `detector-prod` (and each
/// of `more_destinations`').
pub fn seed_with(more_destinations: &[&str]) -> Seed {
    let more = more_destinations.iter().enumerate().map(|(i, id)| {
        let key = format!("AKIATESTMORE{:08}", i + 3);
        account(id, &key, Some(&account_secret(id)))
    });
    support::copy_seed(
        account(SOURCE_ACCOUNT, "AKIATESTSOURCE000001", Some(&account_secret(SOURCE_ACCOUNT))),
        &["v1", "v2"],
        std::iter::once(SeedAccount {
            roles: vec![DEST_ROLE.to_owned()],
            ..account(DEST_ACCOUNT, "AKIATESTDEST00000002", Some(&account_secret(DEST_ACCOUNT)))
        })
        .chain(more)
        .collect(),
    )
}

pub fn seed() -> Seed {
    seed_with(&[])
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        modelcopy::telemetry::init("warn,modelcopy=info");
        // The tests' own pool on the service's database, for the SQL they run behind the service.
        let (database_url, pool) = match options.database {
            Some(database) => database,
            None => support::fresh_database("svc").await,
        };
        let seed = seed_with(&options.more_destinations);
        // Cross-account copies need the source project's policy, as on AWS; these let each destination account
        // copy from the source project.
        let policies = std::iter::once(("allow-destination".to_owned(), DEST_ACCOUNT))
            .chain(
                options
                    .more_destinations
                    .iter()
                    .filter(|id| !options.without_policy.contains(id))
                    .map(|id| (format!("allow-{id}"), *id)),
            )
            .map(|(name, id)| SeedProjectPolicy::allow_copy(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT, &name, id))
            .collect();
        let sim = simulator::start(SimConfig {
            copy_duration: options.copy_duration,
            seed: seed.clone(),
            project_policies: policies,
            require_project_policy: true,
            quotas: options.quotas,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");

        let mut settings = Settings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            database_url: database_url.clone(),
            database_max_connections: 8,
            auth: options.auth,
            ..Settings::default()
        };
        let policy_file = support::scratch_dir("modelcopy-policies").join("policies.cedar");
        let policies = options.policies.unwrap_or_else(|| std::fs::read_to_string(support::DEV_POLICIES).unwrap());
        std::fs::write(&policy_file, policies).expect("policy file");
        settings.authz.policies = Some(policy_file.clone());
        settings.authz.reload_interval_ms = 100;
        settings.telemetry.otlp_endpoint = options.otlp_endpoint;
        settings.telemetry.otlp_ca_file = options.otlp_ca_file;
        settings.health_listen_addr = options.health_port.then(|| "127.0.0.1:0".parse().unwrap());
        settings.telemetry.metrics_listen_addr = options.metrics.then(|| "127.0.0.1:0".parse().unwrap());
        settings.admission = options.admission.unwrap_or_default();
        if let Some(timeout) = options.database_timeout {
            settings.database_timeout_ms = timeout.as_millis() as u64;
        }
        if let Some(watch) = options.watch {
            settings.watch = watch;
        }
        if let Some(web) = options.web {
            settings.web = web;
        }
        if let Some(timeout) = options.request_timeout {
            settings.request_timeout_ms = timeout.as_millis() as u64;
        }
        settings.dispatch.enabled = options.dispatch;
        settings.dispatch.poll_interval_ms = 50;
        // A new leader's first call waits this long (see `dispatch::term`).
        settings.dispatch.leadership_timeout_ms = 500;
        settings.dispatch.status_poll_interval_ms = 100;
        settings.dispatch.backoff_min_ms = 50;
        settings.dispatch.backoff_max_ms = 200;
        settings.dispatch.max_attempts = 5;
        settings.dispatch.expiry_retry_interval_ms = 300;
        settings.preflight = options
            .preflight
            .unwrap_or(modelcopy::preflight::PreflightSettings { enabled: false, ..Default::default() });
        settings.dispatch.aws_timeout_ms = 5_000;
        for account in seed.accounts.iter().filter(|a| !options.unconfigured.contains(&a.account_id.as_str())) {
            settings.accounts.insert(
                account.account_id.parse().expect("a seeded account id"),
                AccountSettings {
                    region: REGION.into(),
                    endpoint_url: Some(sim.endpoint_url()),
                    access_key_id: Some(account.access_key_id.clone()),
                    secret_access_key: account.secret_access_key.clone(),
                    role_arn: options
                        .assume_role
                        .filter(|_| account.account_id == DEST_ACCOUNT)
                        .map(|role| format!("arn:aws:iam::{DEST_ACCOUNT}:role/{role}")),
                    external_id: None,
                    role_session_name: None,
                    sts_endpoint_url: Some(sim.endpoint_url()),
                    // Fast enough that pacing never decides a test's outcome; the fleet tests check pacing.
                    limits: AccountLimits {
                        copy_per_second: 50.0,
                        describe_per_second: 100.0,
                        delete_per_second: 50.0,
                        max_queued: options.max_queued.unwrap_or(AccountLimits::default().max_queued),
                        max_in_progress: options.max_in_progress.unwrap_or(AccountLimits::default().max_in_progress),
                        ..AccountLimits::default()
                    },
                },
            );
        }
        let app = Application::start(settings.clone()).await.expect("application starts");
        let endpoint = app.endpoint();
        TestApp { app: Some(app), endpoint, pool, database_url, sim, seed, settings, policy_file }
    }

    /// An app (dispatch off) whose database connections all go through a [`Proxy`] the test controls, with
    /// `database_timeout_ms` = `timeout`: for database faults.
    pub async fn spawn_behind_proxy(timeout: Duration) -> (TestApp, Proxy) {
        let options = Options { dispatch: false, database_timeout: Some(timeout), ..Default::default() };
        TestApp::spawn_behind_proxy_with(options).await
    }

    /// An app made with `options` whose database connections all go through a [`Proxy`] the test controls.
    pub async fn spawn_behind_proxy_with(options: Options) -> (TestApp, Proxy) {
        let (url, pool) = support::fresh_database("behind_proxy").await;
        let (proxy, proxied) = Proxy::in_front_of(&url).await;
        let options = Options { database: Some((proxied, pool)), ..options };
        (TestApp::spawn_with(options).await, proxy)
    }

    /// `n` copies queued behind the service, as plain rows such as a long queue leaves (the triggers count them),
    /// asked for by `principal` and named `{prefix}-1`, `{prefix}-2`, …: their ids. No events are recorded.
    pub async fn queue_behind(&self, n: i64, principal: &str, prefix: &str) -> Vec<uuid::Uuid> {
        let template = self.copy_request("template");
        sqlx::query_scalar(
            "INSERT INTO copy_jobs (id, principal, request_digest, source_project_arn, source_project_version_arn,
                                    destination_project_arn, version_name, s3_bucket, source_account,
                                    destination_account, region, state)
             SELECT gen_random_uuid(), $8, '\\x00', $1, $2, $3, $9 || '-' || n, 'bucket', $4, $5, $6, 'QUEUED'
               FROM generate_series(1, $7) AS n
             RETURNING id",
        )
        .bind(&template.source_project_arn)
        .bind(&template.source_project_version_arn)
        .bind(&template.destination_project_arn)
        .bind(SOURCE_ACCOUNT)
        .bind(DEST_ACCOUNT)
        .bind(REGION)
        .bind(n)
        .bind(principal)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Waits (bounded) until at least `n` sessions wait for an advisory lock in this app's database. (`pg_locks`
    /// shows the whole cluster, which every test shares: counted across it, another test's waiter passed for this
    /// one's, under CI's load.)
    pub async fn until_advisory_waiters(&self, n: i64) {
        for _ in 0..200 {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            if waiting >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {n} sessions ever waited for an advisory lock");
    }

    /// A session of the test's holding the transaction-scoped advisory lock `key` until the transaction ends.
    pub async fn hold_advisory_lock(&self, key: i64) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut held = self.pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *held).await.unwrap();
        held
    }

    /// An app whose copies stay queued until the test starts a dispatching replica (or never).
    pub async fn spawn_without_dispatch() -> TestApp {
        TestApp::spawn_with(Options { dispatch: false, ..Default::default() }).await
    }

    /// Queues `request` as `client`'s caller and returns the new copy.
    pub async fn submit(client: &mut Client, request: proto::CopyModelVersionRequest) -> proto::Copy {
        client.copy_model_version(request).await.expect("copy accepted").into_inner().copy.expect("a copy")
    }

    /// Another replica of the service on the same database and simulator, dispatching.
    pub async fn spawn_replica(&self) -> Application {
        let mut settings = self.settings.clone();
        settings.dispatch.enabled = true;
        Application::start(settings).await.expect("replica starts")
    }

    pub async fn client(&self, principal: &str) -> Client {
        support::grpc_client(&self.endpoint, Some(principal)).await
    }

    pub async fn anonymous_client(&self) -> Client {
        support::grpc_client(&self.endpoint, None).await
    }

    pub fn source_project(&self) -> String {
        self.seed.project_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT).unwrap()
    }

    pub fn source_version(&self) -> String {
        self.seed.version_arn(SOURCE_ACCOUNT, REGION, SOURCE_PROJECT, "v1").unwrap()
    }

    pub fn destination_project(&self) -> String {
        self.seed.project_arn(DEST_ACCOUNT, REGION, DEST_PROJECT).unwrap()
    }

    /// A valid request copying detector/v1 into detector-prod as `version_name`.
    pub fn copy_request(&self, version_name: &str) -> proto::CopyModelVersionRequest {
        proto::CopyModelVersionRequest {
            source_project_arn: self.source_project(),
            source_project_version_arn: self.source_version(),
            destination_project_arn: self.destination_project(),
            version_name: version_name.into(),
            output_config: Some(proto::OutputConfig {
                s3_bucket: "model-output".into(),
                s3_key_prefix: "copies/".into(),
            }),
            tags: [("team".to_string(), "vision".to_string())].into(),
            kms_key_id: None,
            idempotency_token: String::new(),
            delete_after: None,
        }
    }

    /// Polls GetCopy until the copy is in a terminal state (bounded: 20 s).
    pub async fn wait_until_ended(&self, client: &mut Client, copy_id: &str) -> proto::Copy {
        for _ in 0..400 {
            let copy = client
                .get_copy(proto::GetCopyRequest { copy_id: copy_id.into() })
                .await
                .expect("get copy")
                .into_inner();
            let state = copy.state();
            if matches!(state, proto::CopyState::Succeeded | proto::CopyState::Failed | proto::CopyState::Cancelled) {
                return copy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("copy {copy_id} did not end within 20 s");
    }

    /// The states a copy went through, from its stored history. COPYING -> COPYING events (Rekognition's status
    /// message changed while the copy ran) depend on timing, so repeats are folded into one.
    pub async fn history(&self, copy_id: &str) -> Vec<String> {
        let mut states: Vec<String> =
            sqlx::query_scalar("SELECT to_state FROM copy_events WHERE copy_id = $1::uuid ORDER BY seq")
                .bind(copy_id)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        states.dedup();
        states
    }

    /// The reason stored in a cancelled copy's history (its CANCELLED event's detail).
    pub async fn cancel_detail(&self, copy_id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT detail FROM copy_events WHERE copy_id = $1::uuid AND to_state = 'CANCELLED'")
            .bind(copy_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Audit rows as (rpc, decision, grpc_code, copy id), oldest first.
    pub async fn audit_rows(&self) -> Vec<(String, String, String, Option<String>)> {
        sqlx::query_as("SELECT rpc, decision, grpc_code, copy_id::text FROM audit_log ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    pub async fn job_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM copy_jobs").fetch_one(&self.pool).await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("clean stop");
        }
        self.sim.shutdown();
        if let Some(dir) = self.policy_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The states of a copy as a test reads them.
pub fn state_names(events: &[proto::CopyEvent]) -> Vec<proto::CopyState> {
    events.iter().map(|e| e.copy.as_ref().unwrap().state()).collect()
}
