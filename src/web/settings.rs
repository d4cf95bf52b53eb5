//! `[web]`: what browsers get from the API's port.

use serde::{Deserialize, Serialize};

/// `[web]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// gRPC-Web on the API's port (HTTP/1.1 and HTTP/2), through the same admission, authentication, authorization
    /// and audit as native gRPC. Same-origin pages need nothing else; pages of other origins need `cors_origins`.
    pub grpc_web: bool,
    /// Origins (`https://dash.example.com`) whose pages may call the API from a browser; none by default, so a
    /// browser refuses every other origin's call before it is sent.
    pub cors_origins: Vec<String>,
    /// The live dashboard at `/dashboard/` (static files compiled into the binary; its data comes over gRPC-Web
    /// with the caller's own token). Off by default.
    pub dashboard: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings { grpc_web: true, cors_origins: Vec::new(), dashboard: false }
    }
}

impl WebSettings {
    /// The settings' mistakes, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for origin in &self.cors_origins {
            if let Err(why) = check_origin(origin) {
                problems.push(format!("web.cors_origins: {origin:?} {why}"));
            }
        }
        if !self.grpc_web && !self.cors_origins.is_empty() {
            problems.push("web.cors_origins needs web.grpc_web".into());
        }
        if !self.grpc_web && self.dashboard {
            problems.push("web.dashboard needs web.grpc_web (its data comes over gRPC-Web)".into());
        }
        problems
    }

    /// Whether the port must speak HTTP/1.1 too: browsers without TLS do not speak HTTP/2.
    pub fn needs_http1(&self) -> bool {
        self.grpc_web || self.dashboard
    }
}

/// An origin as browsers send it: scheme, host, optional port; nothing else (no path, no wildcard).
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() || rest.contains(['/', '*', ' ', '?', '#', '@']) {
        return Err("must be scheme://host[:port], with no path or wildcard");
    }
    http::HeaderValue::from_str(origin).map_err(|_| "is not a valid header value")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(check_origin("https://dash.example.com").is_ok());
        assert!(check_origin("http://127.0.0.1:5173").is_ok());
        assert!(check_origin("dash.example.com").is_err());
        assert!(check_origin("https://dash.example.com/").is_err());
        assert!(check_origin("https://*.example.com").is_err());
        assert!(check_origin("https://").is_err());
    }

    #[test]
    fn cors_and_the_dashboard_need_grpc_web() {
        let settings = WebSettings { grpc_web: false, cors_origins: vec!["https://a.example".into()], dashboard: true };
        assert_eq!(settings.problems().len(), 2, "{:?}", settings.problems());
        assert!(WebSettings::default().problems().is_empty());
    }
}
