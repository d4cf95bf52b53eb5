//! The server side of TLS: `[auth.tls]` read into tonic's (rustls's) configuration.
//!
//! With a client CA, clients are asked for a certificate, and one that does not chain to that CA fails the
//! handshake. A client without one is let through the handshake unless `require_client_cert` is set, so that
//! bearer-token callers can share the port and so that a call without any credentials is refused — and audited —
//! by the authentication layer rather than vanishing in a handshake nobody records.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use super::chain::AuthSetupError;
use super::settings::TlsSettings;

/// A client that has not finished its handshake by then is dropped, so that idle half-open connections cannot
/// pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS configuration `settings` describe, with every file read (and named in the error when it cannot be).
pub fn server_config(settings: &TlsSettings) -> Result<ServerTlsConfig, AuthSetupError> {
    let cert = read_pem("cert_file", &settings.cert_file, "CERTIFICATE")?;
    let key = read_pem("key_file", &settings.key_file, "PRIVATE KEY")?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key)).timeout(HANDSHAKE_TIMEOUT);
    match &settings.client_ca_file {
        Some(ca) => {
            let ca = read_pem("client_ca_file", ca, "CERTIFICATE")?;
            config =
                config.client_ca_root(Certificate::from_pem(ca)).client_auth_optional(!settings.require_client_cert);
        }
        None if settings.require_client_cert => {
            return Err(AuthSetupError::Tls("require_client_cert needs client_ca_file".into()));
        }
        None => {}
    }
    Ok(config)
}

/// The file's text, once it is known to hold a PEM block of `kind` (rustls's own errors would not say which file).
fn read_pem(setting: &str, path: &Path, kind: &str) -> Result<String, AuthSetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AuthSetupError::Tls(format!("cannot read {setting} {}: {e}", path.display())))?;
    let holds_kind = text.lines().any(|line| line.starts_with("-----BEGIN ") && line.contains(kind));
    if !holds_kind {
        return Err(AuthSetupError::Tls(format!("{setting} {} holds no PEM {kind}", path.display())));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, client_ca: bool, require: bool) -> TlsSettings {
        TlsSettings {
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
            client_ca_file: client_ca.then(|| dir.join("ca.pem")),
            require_client_cert: require,
        }
    }

    fn files() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("modelcopy-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        dir
    }

    #[test]
    fn reads_the_files() {
        let dir = files();
        assert!(server_config(&settings(&dir, true, true)).is_ok());
        assert!(server_config(&settings(&dir, false, false)).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_the_file_it_cannot_use() {
        let dir = files();
        std::fs::write(dir.join("server.key"), "not a key").unwrap();
        let err = server_config(&settings(&dir, false, false)).unwrap_err();
        assert!(err.to_string().contains("key_file"), "{err}");
        std::fs::remove_file(dir.join("server.pem")).unwrap();
        let err = server_config(&settings(&dir, false, false)).unwrap_err();
        assert!(err.to_string().contains("cert_file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn requiring_a_client_certificate_needs_a_client_ca() {
        let dir = files();
        let err = server_config(&settings(&dir, false, true)).unwrap_err();
        assert!(err.to_string().contains("client_ca_file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
