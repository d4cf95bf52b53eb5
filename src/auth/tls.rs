//! The server side of TLS: `[auth.tls]` read into a rustls acceptor, as tonic would build it (the same verifier,
//! ALPN and handshake timeout). The service accepts TLS itself (`crate::connection::tls`) rather than through
//! tonic's `tls_config`, so that the decrypted stream is what HTTP/2 writes to and its frames are gathered
//! (`crate::connection`); tonic's `Connected` for rustls streams still gives the handlers the client's certificates
//! (`TlsConnectInfo`).
//!
//! With a client CA, clients are asked for a certificate, and one that does not chain to that CA fails the
//! handshake. A client without one is let through the handshake unless `require_client_cert` is set, so that
//! bearer-token callers can share the port and so that a call without any credentials is refused — and audited —
//! by the authentication layer rather than vanishing in a handshake nobody records.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::chain::AuthSetupError;
use super::settings::TlsSettings;

/// A client that has not finished its handshake by then is dropped, so that idle half-open connections cannot
/// pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2, the only protocol offered in the handshake (as tonic does); a client without ALPN may still speak
/// HTTP/1.1 when the port accepts it (gRPC-Web).
const ALPN_H2: &[u8] = b"h2";

/// The TLS acceptor `settings` describe, with every file read (and named in the error when it cannot be).
pub fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, AuthSetupError> {
    let cert = read_pem("cert_file", &settings.cert_file, "CERTIFICATE")?;
    let key = read_pem("key_file", &settings.key_file, "PRIVATE KEY")?;
    let chain = certificates("cert_file", &settings.cert_file, &cert)?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| unusable("key_file", &settings.key_file, e))?;
    let builder = ServerConfig::builder();
    let builder = match &settings.client_ca_file {
        Some(ca_file) => {
            let ca = read_pem("client_ca_file", ca_file, "CERTIFICATE")?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certificates("client_ca_file", ca_file, &ca)?);
            if added == 0 {
                return Err(unusable("client_ca_file", ca_file, "no CA certificate rustls can use"));
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if settings.require_client_cert { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| unusable("client_ca_file", ca_file, e))?)
        }
        None if settings.require_client_cert => {
            return Err(AuthSetupError::Tls("require_client_cert needs client_ca_file".into()));
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| AuthSetupError::Tls(format!("the certificate and key cannot serve TLS: {e}")))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(setting: &str, path: &Path, pem: &str) -> Result<Vec<CertificateDer<'static>>, AuthSetupError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(setting, path, e))
}

fn unusable(setting: &str, path: &Path, err: impl std::fmt::Display) -> AuthSetupError {
    AuthSetupError::Tls(format!("{setting} {}: {err}", path.display()))
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
        assert!(acceptor(&settings(&dir, true, true)).is_ok());
        assert!(acceptor(&settings(&dir, false, false)).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_the_file_it_cannot_use() {
        let dir = files();
        std::fs::write(dir.join("server.key"), "not a key").unwrap();
        let err = acceptor(&settings(&dir, false, false)).err().expect("refused");
        assert!(err.to_string().contains("key_file"), "{err}");
        std::fs::remove_file(dir.join("server.pem")).unwrap();
        let err = acceptor(&settings(&dir, false, false)).err().expect("refused");
        assert!(err.to_string().contains("cert_file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn requiring_a_client_certificate_needs_a_client_ca() {
        let dir = files();
        let err = acceptor(&settings(&dir, false, true)).err().expect("refused");
        assert!(err.to_string().contains("client_ca_file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
