//! The live dashboard's files, compiled into the binary and served at `/dashboard/` on the API's port.
//!
//! Why in the binary: the image, the Kubernetes manifests and `modelcopy dev` then need nothing beside the
//! executable, and the page can never be of another version than the API it calls. The page itself holds no
//! secret and no data: everything it shows comes over gRPC-Web with the token its user types, through the same
//! authentication, authorization and audit as any call (`dashboard/README.md`). A tower layer, so that the paths it
//! does not own go on to gRPC untouched.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{Either, Ready};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tonic::body::Body;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));
}

/// Where the dashboard lives.
pub const PREFIX: &str = "/dashboard";

/// Nothing but the page's own files; no frames, no plug-ins, no other origin.
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Debug, Clone, Copy, Default)]
pub struct DashboardLayer;

impl<S> tower::Layer<S> for DashboardLayer {
    type Service = Dashboard<S>;
    fn layer(&self, inner: S) -> Dashboard<S> {
        Dashboard { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Dashboard<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for Dashboard<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if path == PREFIX || path.starts_with("/dashboard/") {
            let response = serve(request.method(), path);
            return Either::Left(futures::future::ready(Ok(response)));
        }
        Either::Right(self.inner.call(request))
    }
}

/// The answer to a request for `path` (under [`PREFIX`]).
fn serve(method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only");
    }
    // The page's links are relative: it must be loaded from the directory, not from `/dashboard`.
    if path == PREFIX {
        let mut response = plain(StatusCode::PERMANENT_REDIRECT, "");
        response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/dashboard/"));
        return response;
    }
    let name = path.trim_start_matches("/dashboard/");
    let name = if name.is_empty() { "index.html" } else { name };
    let Some((_, bytes)) = assets::ASSETS.iter().find(|(asset, _)| *asset == name) else {
        return plain(StatusCode::NOT_FOUND, "no such file in the dashboard");
    };
    let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from_static(bytes) };
    let mut response = Response::new(Body::new(Full::new(body)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    // Built files carry a hash of their content in their names, and never change under one; the page names them.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, http::HeaderMap, Bytes) {
        let response = serve(&Method::GET, path);
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn the_page_and_every_asset_it_names_are_served_with_their_types() {
        let (status, headers, page) = get("/dashboard/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let page = String::from_utf8(page.to_vec()).unwrap();
        let named: Vec<&str> = page.split("./assets/").skip(1).map(|rest| rest.split('"').next().unwrap()).collect();
        assert!(named.len() >= 2, "the page names its script and style: {page}");
        for asset in named {
            let (status, headers, body) = get(&format!("/dashboard/assets/{asset}")).await;
            assert_eq!(status, StatusCode::OK, "{asset}");
            assert!(!body.is_empty());
            assert!(headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        }
    }

    #[tokio::test]
    async fn the_bare_prefix_redirects_and_unknown_files_and_methods_are_refused() {
        let (status, headers, _) = get("/dashboard").await;
        assert_eq!(
            (status, &headers[header::LOCATION]),
            (StatusCode::PERMANENT_REDIRECT, &"/dashboard/".parse().unwrap())
        );
        assert_eq!(get("/dashboard/../Cargo.toml").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get("/dashboard/nothing.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(serve(&Method::POST, "/dashboard/").status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
