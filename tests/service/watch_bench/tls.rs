//! TLS for the watch benchmark (`MODELCOPY_BENCH_TLS=1`): a self-signed certificate for `localhost` that the
//! server serves (`[auth.tls]`) and the clients trust. The fan-out then goes through TLS as it would in
//! production, where each write is a TLS record: what gathering frames saves is larger there.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::support;

pub struct BenchTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

/// The benchmark's TLS, when `MODELCOPY_BENCH_TLS` is set.
pub fn chosen() -> Option<&'static BenchTls> {
    static TLS: OnceLock<Option<BenchTls>> = OnceLock::new();
    TLS.get_or_init(|| std::env::var_os("MODELCOPY_BENCH_TLS").map(|_| BenchTls::new())).as_ref()
}

impl BenchTls {
    fn new() -> BenchTls {
        let dir = support::scratch_dir("modelcopy-watch-bench-tls");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        BenchTls { cert_file, key_file, cert_pem: cert.pem(), cert_der: cert.der().clone() }
    }

    /// The server's `[auth.tls]`.
    pub fn server_table(&self) -> String {
        format!(
            "[auth.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            self.cert_file.display(),
            self.key_file.display()
        )
    }

    /// For tonic's client.
    pub fn tonic(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.cert_pem))
            .domain_name("localhost")
    }

    /// For the wire client: HTTP/2 by ALPN.
    pub fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der.clone()).unwrap();
        let mut config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsConnector::from(Arc::new(config))
    }
}
