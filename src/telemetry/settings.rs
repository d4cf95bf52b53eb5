//! `[telemetry]`: where traces go, under which service name, and how many of them.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An OTLP/gRPC collector: `https://host:4317` (TLS) or `http://host:4317` (a collector beside the service).
    /// Unset (the default): no traces leave the process; logs are written as always.
    pub otlp_endpoint: Option<String>,
    /// PEM file of the CA(s) that signed an `https` collector's certificate. Unset: the system's trusted roots.
    pub otlp_ca_file: Option<PathBuf>,
    /// `service.name` on every exported span, which is how trace backends tell services apart.
    pub service_name: String,
    /// Where Prometheus scrapes `/metrics` (plain HTTP, a port of its own). Unset (the default): not served.
    pub metrics_listen_addr: Option<SocketAddr>,
    /// How often metrics are sent to `otlp_endpoint`, in milliseconds.
    pub metrics_export_interval_ms: u64,
    /// Share of new traces recorded, from 0.0 to 1.0. A caller that sends its own `traceparent` decides for its
    /// trace: its sampled flag is followed whatever this says.
    pub sampling_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            otlp_ca_file: None,
            metrics_listen_addr: None,
            metrics_export_interval_ms: 30_000,
            service_name: "modelcopy".into(),
            sampling_ratio: 1.0,
        }
    }
}

impl TelemetrySettings {
    /// The settings' mistakes, each naming its field, so that a service exports what it was told or does not start.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(format!("telemetry.sampling_ratio must be between 0 and 1, not {}", self.sampling_ratio));
        }
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name must not be empty".into());
        }
        let mut tls = false;
        if let Some(endpoint) = &self.otlp_endpoint {
            let uri: http::Uri =
                endpoint.parse().map_err(|e| format!("telemetry.otlp_endpoint {endpoint:?} is not a URL: {e}"))?;
            tls = uri.scheme_str() == Some("https");
            if !(tls || uri.scheme_str() == Some("http")) || uri.host().is_none() {
                return Err(format!(
                    "telemetry.otlp_endpoint {endpoint:?} must be https://host:port or http://host:port (an \
                     OTLP/gRPC collector)"
                ));
            }
        }
        if self.metrics_export_interval_ms == 0 {
            return Err("telemetry.metrics_export_interval_ms must be at least 1".into());
        }
        if self.otlp_ca_file.is_some() && !tls {
            return Err("telemetry.otlp_ca_file is for an https:// otlp_endpoint".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut TelemetrySettings)) -> Result<(), String> {
        let mut settings = TelemetrySettings::default();
        f(&mut settings);
        settings.check()
    }

    #[test]
    fn the_defaults_export_nothing_and_pass() {
        assert_eq!(TelemetrySettings::default().otlp_endpoint, None);
        assert_eq!(with(|_| {}), Ok(()));
        assert_eq!(with(|s| s.otlp_endpoint = Some("http://127.0.0.1:4317".into())), Ok(()));
        assert_eq!(with(|s| s.otlp_endpoint = Some("https://collector.internal:4317".into())), Ok(()));
    }

    #[test]
    fn a_ratio_outside_zero_to_one_is_refused() {
        for ratio in [-0.1, 1.5, f64::NAN] {
            let err = with(|s| s.sampling_ratio = ratio).unwrap_err();
            assert!(err.contains("telemetry.sampling_ratio"), "{err}");
        }
    }

    #[test]
    fn an_endpoint_must_be_http_or_https_with_a_host() {
        for endpoint in ["grpc://collector:4317", "collector:4317", "not a url", "http:///x"] {
            let err = with(|s| s.otlp_endpoint = Some(endpoint.into())).unwrap_err();
            assert!(err.contains("telemetry.otlp_endpoint"), "{endpoint}: {err}");
        }
    }

    #[test]
    fn an_empty_service_name_is_refused() {
        let err = with(|s| s.service_name = " ".into()).unwrap_err();
        assert!(err.contains("telemetry.service_name"), "{err}");
    }

    #[test]
    fn a_ca_file_needs_an_https_endpoint() {
        let err = with(|s| {
            s.otlp_endpoint = Some("http://127.0.0.1:4317".into());
            s.otlp_ca_file = Some("ca.pem".into());
        })
        .unwrap_err();
        assert!(err.contains("telemetry.otlp_ca_file"), "{err}");
    }
}
