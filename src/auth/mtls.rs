//! Mutual TLS: the client certificate the TLS handshake verified against `[auth.tls] client_ca_file` names the
//! caller.
//!
//! Verification (chain to the configured CA, validity period, client-auth usage) is rustls's, in the handshake:
//! a certificate from another CA never gets a connection. What reaches this module is a verified chain, and it
//! only reads names from its first (leaf) certificate:
//!
//! - **id**: the first URI SAN (a SPIFFE id such as `spiffe://example.org/ns/ci/sa/deployer`), else the first DNS
//!   SAN, else the subject's common name. URIs come first because they name workloads; DNS names and CNs are
//!   what older PKIs have.
//! - **groups**: the subject's organizational unit (OU) values, in order; none when it has no OU.
//! - **kind**: always a service. People use tokens; certificates identify workloads.

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

use super::{AuthError, Principal};

/// How certificate principals are labelled in the audit log.
pub const MTLS_AUTHN: &str = "mtls";

/// Longest name accepted as a principal id.
const MAX_ID_LEN: usize = 256;

/// The verified certificate chain the client presented on this call's connection, leaf first; `None` when the
/// connection is not TLS or the client sent no certificate.
pub fn peer_certificate(extensions: &http::Extensions) -> Option<Vec<u8>> {
    let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let chain = info.peer_certs()?;
    chain.first().map(|leaf| leaf.as_ref().to_vec())
}

/// The service a verified client certificate (DER) names.
pub fn principal_from_certificate(der: &[u8]) -> Result<Principal, AuthError> {
    let refuse = |message: String| AuthError::new(MTLS_AUTHN, message);
    let (_, cert) =
        parse_x509_certificate(der).map_err(|e| refuse(format!("the client certificate cannot be read: {e}")))?;
    let names = cert
        .subject_alternative_name()
        .map_err(|e| refuse(format!("the client certificate's subjectAltName cannot be read: {e}")))?
        .map(|ext| ext.value.general_names.clone())
        .unwrap_or_default();
    let uri = names.iter().find_map(|n| match n {
        GeneralName::URI(uri) => Some(*uri),
        _ => None,
    });
    let dns = names.iter().find_map(|n| match n {
        GeneralName::DNSName(dns) => Some(*dns),
        _ => None,
    });
    let subject = cert.subject();
    let common_name = subject.iter_common_name().find_map(|cn| cn.as_str().ok());
    let id = uri.or(dns).or(common_name).ok_or_else(|| {
        refuse("the client certificate names nobody: it has no URI or DNS subjectAltName and no subject CN".into())
    })?;
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(refuse(format!("the client certificate's name must be 1 to {MAX_ID_LEN} printable characters")));
    }
    let groups = subject
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok())
        .filter(|ou| !ou.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Principal::service(id, groups, MTLS_AUTHN))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;
    use crate::auth::PrincipalKind;

    fn certificate(sans: Vec<SanType>, cn: Option<&str>, ous: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = sans;
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        for ou in ous {
            params.distinguished_name.push(DnType::OrganizationalUnitName, *ou);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(text: &str) -> SanType {
        SanType::URI(text.try_into().unwrap())
    }

    fn dns(text: &str) -> SanType {
        SanType::DnsName(text.try_into().unwrap())
    }

    #[test]
    fn a_uri_san_names_the_service() {
        let der = certificate(
            vec![dns("deployer.ci.internal"), uri("spiffe://example.org/ns/ci/sa/deployer")],
            Some("deployer"),
            // rcgen writes one value per attribute type, so one OU here; every OU of a subject becomes a group.
            &["platform"],
        );
        let principal = principal_from_certificate(&der).unwrap();
        assert_eq!(principal.id(), "spiffe://example.org/ns/ci/sa/deployer");
        assert_eq!(principal.kind(), PrincipalKind::Service);
        assert_eq!(principal.groups(), ["platform"]);
        assert_eq!(principal.authn(), "mtls");
    }

    #[test]
    fn without_a_uri_the_first_dns_name_then_the_common_name() {
        let der = certificate(vec![dns("a.internal"), dns("b.internal")], Some("cn-name"), &[]);
        let principal = principal_from_certificate(&der).unwrap();
        assert_eq!(principal.id(), "a.internal");
        assert!(principal.groups().is_empty());
        let der = certificate(vec![], Some("batch-runner"), &["ops"]);
        assert_eq!(principal_from_certificate(&der).unwrap().id(), "batch-runner");
    }

    #[test]
    fn a_certificate_naming_nobody_is_refused() {
        let err = principal_from_certificate(&certificate(vec![], None, &["ops"])).unwrap_err();
        assert!(err.message.contains("names nobody"), "{err}");
        assert_eq!(err.authn, "mtls");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(principal_from_certificate(b"not der").is_err());
    }

    #[test]
    fn no_tls_no_certificate() {
        assert_eq!(peer_certificate(&http::Extensions::new()), None);
    }
}
