//! Authentication end to end: the real server serving TLS, identifying callers by client certificate and by
//! bearer JWT, called by tonic clients over loopback. The CAs, certificates and signing keys are made here.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use modelcopy::auth::settings::{JwtSettings, TlsSettings};
use modelcopy::auth::{AuthMode, AuthSettings};
use modelcopy::cli::connect::{self, CallMetadata, Client, TlsOptions};
use modelcopy::config::Settings;
use modelcopy::proto;
use modelcopy::startup::Application;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use serde_json::{json, Value};
use tonic::Code;

use crate::helpers::{Options, TestApp};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "modelcopy";
const SERVICE_ID: &str = "spiffe://test.example/ns/ci/sa/deployer";

/// A certificate authority that can sign server and client certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A certificate and key (PEM) for `params`, signed by this CA.
    fn sign(&self, mut params: CertificateParams, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key)).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn server(&self) -> (String, String) {
        self.sign(
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap(),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A workload's certificate: a SPIFFE id, and the OU that becomes its group.
    fn client(&self) -> (String, String) {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(SERVICE_ID.try_into().unwrap())];
        params.distinguished_name.push(DnType::CommonName, "deployer");
        params.distinguished_name.push(DnType::OrganizationalUnitName, "platform");
        self.sign(params, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// An ES256 key that signs tokens, published in a JWKS as `kid`.
struct Signer {
    key: EncodingKey,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Signer { key: EncodingKey::from_ec_der(&pair.serialize_der()), kid: kid.into() }
    }

    fn jwks(&self) -> String {
        let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()
    }

    fn token(&self, changes: Value) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut claims = json!({
            "sub": "alice@example.com",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": now + 600,
            "nbf": now - 10,
            "groups": ["vision"],
        });
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let header = Header { kid: Some(self.kid.clone()), ..Header::new(Algorithm::ES256) };
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

fn now_plus(secs: i64) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + secs
}

/// The service's CA, its server certificate and its JWT issuer, as files the settings name.
pub(crate) struct Pki {
    dir: PathBuf,
    ca: Ca,
    signer: Signer,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("modelcopy-authn-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Ca::new("modelcopy test CA");
        let (server_cert, server_key) = ca.server();
        let signer = Signer::new("key-1");
        std::fs::write(dir.join("server.pem"), server_cert).unwrap();
        std::fs::write(dir.join("server.key"), server_key).unwrap();
        std::fs::write(dir.join("client-ca.pem"), &ca.pem).unwrap();
        std::fs::write(dir.join("jwks.json"), signer.jwks()).unwrap();
        Pki { dir, ca, signer }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A token for alice@example.com (group "vision"), valid for ten minutes.
    pub(crate) fn token(&self) -> String {
        self.signer.token(json!({}))
    }

    /// The CA that signed the service's certificate, as PEM.
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca.pem
    }

    pub(crate) fn auth(&self, require_client_cert: bool) -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Authenticated,
            tls: Some(TlsSettings {
                cert_file: self.path("server.pem"),
                key_file: self.path("server.key"),
                client_ca_file: Some(self.path("client-ca.pem")),
                require_client_cert,
            }),
            jwt: Some(JwtSettings {
                jwks_file: self.path("jwks.json"),
                issuer: ISSUER.into(),
                audience: vec![AUDIENCE.into()],
                groups_claim: "groups".into(),
                kind_claim: None,
                leeway_secs: 5,
                algorithms: vec![Algorithm::ES256],
                reload_interval_ms: 100,
            }),
        }
    }

    async fn spawn(&self, require_client_cert: bool) -> TestApp {
        let app = TestApp::spawn_with(Options { auth: self.auth(require_client_cert), ..Default::default() }).await;
        assert!(app.endpoint.starts_with("https://"), "{}", app.endpoint);
        app
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client trusting `ca` (PEM), presenting `identity` and sending `token`.
pub(crate) async fn client(
    app: &TestApp,
    ca: &str,
    identity: Option<(String, String)>,
    token: Option<&str>,
) -> Result<Client, connect::ConnectError> {
    let tls = TlsOptions::from_pem(Some(ca.to_owned()), identity);
    connect::connect_tls(&app.endpoint, CallMetadata::new(None, token).unwrap(), &tls).await
}

/// One call; its gRPC code and message.
async fn list(client: &mut Client) -> (Code, String) {
    match client.list_copies(proto::ListCopiesRequest::default()).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    }
}

/// The audit row of the latest call: (principal, authn, decision, grpc_code, reason).
async fn last_audit_row(app: &TestApp) -> (Option<String>, String, String, String, Option<String>) {
    sqlx::query_as("SELECT principal, authn, decision, grpc_code, reason FROM audit_log ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn a_client_certificate_names_the_service_and_its_absence_or_a_foreign_ca_is_refused() {
    let pki = Pki::new();
    let app = pki.spawn(false).await;

    // A certificate from the configured CA: the caller is the service its URI SAN names, and the row says so.
    let mut workload = client(&app, &pki.ca.pem, Some(pki.ca.client()), None).await.expect("handshake");
    let (code, message) = list(&mut workload).await;
    assert_ne!(code, Code::Unauthenticated, "{message}");
    let (principal, authn, ..) = last_audit_row(&app).await;
    assert_eq!((principal.as_deref(), authn.as_str()), (Some(SERVICE_ID), "mtls"));

    // No certificate and no token: the handshake lets it in, the service refuses it, and the audit log says so.
    let mut anonymous = client(&app, &pki.ca.pem, None, None).await.expect("handshake");
    let (code, message) = list(&mut anonymous).await;
    assert_eq!(code, Code::Unauthenticated);
    assert!(message.contains("no credentials") && message.contains("client certificate"), "{message}");
    let (principal, authn, decision, grpc_code, reason) = last_audit_row(&app).await;
    assert_eq!(principal, None);
    assert_eq!((authn.as_str(), decision.as_str(), grpc_code.as_str()), ("none", "DENIED", "Unauthenticated"));
    assert!(reason.unwrap_or_default().contains("no credentials"));

    // A certificate from another CA never gets a connection: TLS refuses it, so no call reaches the service.
    let rows = audit_count(&app).await;
    let foreign = Ca::new("someone else's CA");
    let refused = match client(&app, &pki.ca.pem, Some(foreign.client()), None).await {
        Err(_) => true,
        Ok(mut impostor) => list(&mut impostor).await.0 != Code::Ok,
    };
    assert!(refused, "a certificate from another CA must be refused");
    assert_eq!(audit_count(&app).await, rows, "a refused handshake is no call");

    // A client that does not trust the server's CA does not talk to it either.
    let distrustful = match client(&app, &foreign.pem, None, None).await {
        Err(_) => true,
        Ok(mut c) => list(&mut c).await.0 != Code::Ok,
    };
    assert!(distrustful, "the server's certificate must be checked against --ca-cert");
    app.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_checked_and_every_refusal_is_audited() {
    let pki = Pki::new();
    let app = pki.spawn(false).await;

    let good = pki.signer.token(json!({}));
    let mut alice = client(&app, &pki.ca.pem, None, Some(&good)).await.expect("connect");
    let (code, message) = list(&mut alice).await;
    assert_ne!(code, Code::Unauthenticated, "{message}");
    let (principal, authn, ..) = last_audit_row(&app).await;
    assert_eq!((principal.as_deref(), authn.as_str()), (Some("alice@example.com"), "jwt"));

    let forger = Signer::new("key-1");
    let refused = [
        ("expired", pki.signer.token(json!({"exp": now_plus(-120)})), "expired"),
        ("not yet valid", pki.signer.token(json!({"nbf": now_plus(600)})), "not valid yet"),
        ("wrong key", forger.token(json!({})), "signature"),
        ("wrong audience", pki.signer.token(json!({"aud": "another-service"})), "audience"),
        ("wrong issuer", pki.signer.token(json!({"iss": "https://evil.test"})), "issuer"),
    ];
    for (case, token, expected) in refused {
        let rows = audit_count(&app).await;
        let mut caller = client(&app, &pki.ca.pem, None, Some(&token)).await.expect("connect");
        let (code, message) = list(&mut caller).await;
        assert_eq!(code, Code::Unauthenticated, "{case}: {message}");
        assert!(message.contains(expected), "{case}: {message}");
        assert_eq!(audit_count(&app).await, rows + 1, "{case}: one audit row");
        let (principal, authn, decision, grpc_code, reason) = last_audit_row(&app).await;
        assert_eq!(principal, None, "{case}");
        assert_eq!((authn.as_str(), decision.as_str(), grpc_code.as_str()), ("jwt", "DENIED", "Unauthenticated"));
        assert!(reason.unwrap_or_default().contains(expected), "{case}");
    }

    // A token, when sent, decides: a bad one is refused even on a connection with a good certificate.
    let expired = pki.signer.token(json!({"exp": now_plus(-120)}));
    let mut both = client(&app, &pki.ca.pem, Some(pki.ca.client()), Some(&expired)).await.expect("connect");
    assert_eq!(list(&mut both).await.0, Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn a_required_client_certificate_is_required_in_the_handshake() {
    let pki = Pki::new();
    let app = pki.spawn(true).await;
    let good = pki.signer.token(json!({}));
    let refused = match client(&app, &pki.ca.pem, None, Some(&good)).await {
        Err(_) => true,
        Ok(mut c) => list(&mut c).await.0 != Code::Ok,
    };
    assert!(refused, "no certificate, no connection");
    let mut workload = client(&app, &pki.ca.pem, Some(pki.ca.client()), None).await.expect("handshake");
    let (code, message) = list(&mut workload).await;
    assert_ne!(code, Code::Unauthenticated, "{message}");
    app.stop().await;
}

#[tokio::test]
async fn without_any_authentication_configured_the_service_does_not_start() {
    // Nothing is reached before the check: the database URL points nowhere.
    let settings = Settings { database_url: "postgres://nobody@127.0.0.1:1/none".into(), ..Settings::default() };
    let err = Application::start(settings).await.err().expect("refused");
    let message = format!("{err:#}");
    assert!(message.contains("no authentication is configured"), "{message}");
    assert!(message.contains("dev-metadata"), "{message}");

    let pki = Pki::new();
    std::fs::write(pki.path("jwks.json"), "{\"keys\": []}").unwrap();
    let settings = Settings {
        database_url: "postgres://nobody@127.0.0.1:1/none".into(),
        auth: pki.auth(false),
        ..Settings::default()
    };
    let err = Application::start(settings).await.err().expect("refused");
    assert!(format!("{err:#}").contains("jwks"), "{err:#}");
}

#[tokio::test]
async fn the_cli_authenticates_with_a_certificate_or_a_token() {
    use clap::Parser;
    let pki = Pki::new();
    let app = pki.spawn(false).await;
    let (cert, key) = pki.ca.client();
    std::fs::write(pki.path("client.pem"), cert).unwrap();
    std::fs::write(pki.path("client.key"), key).unwrap();
    let token = pki.signer.token(json!({"sub": "carol@example.com"}));
    let [ca, client_cert, client_key] =
        ["client-ca.pem", "client.pem", "client.key"].map(|f| pki.path(f).display().to_string());
    let with_certificate = ["--ca-cert", &ca, "--client-cert", &client_cert, "--client-key", &client_key];
    let with_token = ["--ca-cert", &ca, "--token", &token];
    for (credentials, expected) in [(&with_certificate[..], SERVICE_ID), (&with_token[..], "carol@example.com")] {
        let mut args = vec!["modelcopy-cli", "--endpoint", &app.endpoint];
        args.extend_from_slice(credentials);
        args.extend(["--output", "json", "list"]);
        let cli = modelcopy::cli::Cli::try_parse_from(&args).expect("arguments parse");
        let mut out = Vec::new();
        modelcopy::cli::execute(&cli, &mut out).await.expect("the command succeeds");
        let (principal, ..) = last_audit_row(&app).await;
        assert_eq!(principal.as_deref(), Some(expected));
    }
    app.stop().await;
}

/// The identity provider rotates its key: tokens signed with the new key are accepted once the JWKS file holds it,
/// without a restart; a JWKS file that holds no usable key is refused and the keys in force stay; once the old key
/// leaves the file, its tokens are refused.
#[tokio::test]
async fn a_rotated_jwks_is_followed_without_a_restart_and_a_broken_one_is_refused() {
    let pki = Pki::new();
    let app = pki.spawn(false).await;
    let rotated = Signer::new("key-2");
    let call = |token: String| {
        let (app, ca) = (&app, pki.ca.pem.clone());
        async move {
            let mut caller = client(app, &ca, None, Some(&token)).await.expect("connect");
            list(&mut caller).await
        }
    };
    /// Asks until the answer's code is `code`, within 10 s (OK: accepted, the test's policies permit everything;
    /// UNAUTHENTICATED: refused).
    async fn until<F: std::future::Future<Output = (Code, String)>>(
        mut ask: impl FnMut() -> F,
        code: Code,
    ) -> (Code, String) {
        let mut answer = ask().await;
        for _ in 0..100 {
            if answer.0 == code {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            answer = ask().await;
        }
        answer
    }
    let (code, message) = call(rotated.token(json!({}))).await;
    assert_eq!(code, Code::Unauthenticated, "a key the JWKS does not hold yet: {message}");
    assert!(message.contains("unknown key"), "{message}");

    // The provider publishes the new key beside the old one.
    let both = {
        let mut set: JwkSet = serde_json::from_str(&pki.signer.jwks()).unwrap();
        set.keys.extend(serde_json::from_str::<JwkSet>(&rotated.jwks()).unwrap().keys);
        serde_json::to_string(&set).unwrap()
    };
    std::fs::write(pki.path("jwks.json"), &both).unwrap();
    let (code, message) = until(|| call(rotated.token(json!({}))), Code::Ok).await;
    assert_eq!(code, Code::Ok, "the new key is followed without a restart: {message}");
    assert_eq!(call(pki.signer.token(json!({}))).await.0, Code::Ok, "and the old one still works");

    // A half-written file: refused, the keys in force stay (ten reload intervals later, still accepted).
    std::fs::write(pki.path("jwks.json"), &both[..both.len() / 2]).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (code, message) = call(rotated.token(json!({}))).await;
    assert_eq!(code, Code::Ok, "a broken JWKS changes nothing: {message}");

    // The old key is withdrawn.
    std::fs::write(pki.path("jwks.json"), rotated.jwks()).unwrap();
    let (code, message) = until(|| call(pki.signer.token(json!({}))), Code::Unauthenticated).await;
    assert_eq!(code, Code::Unauthenticated, "the withdrawn key's tokens are refused: {message}");
    assert!(message.contains("unknown key"), "{message}");
    assert_eq!(call(rotated.token(json!({}))).await.0, Code::Ok);
    app.stop().await;
}

/// A replica serving TLS also answers `grpc.health.v1` in plaintext on `health_listen_addr` (Kubernetes' gRPC probes
/// speak no TLS), and serves nothing else there: not the API, not reflection.
#[tokio::test]
async fn a_tls_replica_answers_plaintext_probes_on_its_health_port_and_nothing_else_there() {
    use crate::support::health::{self, ServingStatus};

    let pki = Pki::new();
    let options = Options { auth: pki.auth(false), health_port: true, ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    assert!(app.endpoint.starts_with("https://"), "{}", app.endpoint);
    let addr = app.app.as_ref().unwrap().health_addr().expect("the health port is bound");
    let endpoint = format!("http://{addr}");
    let said = health::until(&endpoint, modelcopy::health::SERVICE, ServingStatus::Serving).await;
    assert_eq!(said, Some(ServingStatus::Serving));
    let plain = tonic::transport::Endpoint::from_shared(endpoint).unwrap().connect().await.unwrap();

    let mut api = proto::model_copy_client::ModelCopyClient::new(plain.clone());
    let refused = api.list_copies(proto::ListCopiesRequest::default()).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unimplemented, "the API is not on the health port");
    let list = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let reflection = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(plain)
        .server_reflection_info(futures::stream::iter([list]))
        .await;
    assert_eq!(reflection.unwrap_err().code(), Code::Unimplemented, "nor reflection");
    app.stop().await;
}
