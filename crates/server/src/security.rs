//! What every response and every request goes through, whatever the route:
//!
//! - **Host and Origin.** While no account exists the console acts as an administrator,
//!   so a page on another site must not reach it through DNS rebinding (its name made to
//!   point at 127.0.0.1). A request is answered only when its `Host` is loopback or one of
//!   `server.hosts`, and, when it carries an `Origin`, that too; on plain HTTP and on the
//!   WebSocket upgrade alike.
//! - **Headers.** A strict `Content-Security-Policy` (scripts and WebAssembly from this
//!   server only, no inline script, no framing, no plugins), `nosniff`, no referrer.
//! - **Panics.** A handler that panics is answered `500` with an error id, and the panic is
//!   logged as an error under that id; the connection is never just dropped.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// Which hosts this server answers to: loopback always, and the configured names.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    names: Vec<(String, Option<u16>)>,
}

impl Hosts {
    pub fn new(configured: &[String]) -> Hosts {
        let names = configured
            .iter()
            .filter_map(|h| {
                let h = h
                    .trim()
                    .trim_start_matches("http://")
                    .trim_start_matches("https://");
                let h = h.trim_end_matches('/');
                let (name, port) = split_host(h)?;
                Some((name, port))
            })
            .collect();
        Hosts { names }
    }

    /// Whether `host[:port]` (as in a `Host` header) is one of ours.
    pub fn allows(&self, host_port: &str) -> bool {
        let Some((name, port)) = split_host(host_port) else {
            return false;
        };
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip.is_loopback() {
                return true;
            }
        }
        self.names
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }

    /// Whether an `Origin` (`scheme://host[:port]`) is one of ours.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        matches!(scheme, "http" | "https") && !rest.contains('/') && self.allows(rest)
    }
}

/// `name[:port]` → lower-case name (IPv6 in brackets kept), port.
fn split_host(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() || s.contains(['/', '@', ' ']) {
        return None;
    }
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{v6}]"), port)
    } else {
        match s.rsplit_once(':') {
            Some((n, p)) => (n.to_string(), Some(p.parse().ok()?)),
            None => (s.to_string(), None),
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some((name, port))
}

fn refuse(status: StatusCode, message: String) -> Response {
    crate::ApiError::new(status, message).into_response()
}

/// The `Host` of a request (HTTP/1.1 header, or the authority of an absolute URI).
pub fn host_of(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// Refuses a request whose `Host` or `Origin` is not ours.
pub async fn guard_hosts(
    State(hosts): State<std::sync::Arc<Hosts>>,
    req: Request,
    next: Next,
) -> Response {
    match host_of(&req) {
        Some(h) if hosts.allows(&h) => {}
        Some(h) => {
            tracing::warn!("refused a request for host {h:?} (not loopback nor in server.hosts)");
            return refuse(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer to {h:?}; add it to `hosts` in the \
                     [server] section of the configuration"
                ),
            );
        }
        None => return refuse(StatusCode::BAD_REQUEST, "no Host header".into()),
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| hosts.allows_origin(o));
        if !ok {
            tracing::warn!("refused a request from origin {origin:?}");
            return refuse(
                StatusCode::FORBIDDEN,
                "requests from another site's pages are refused".into(),
            );
        }
    }
    next.run(req).await
}

/// The policy every response carries. `connect-src` names the WebSocket of this very host
/// (some engines do not count `ws:` as `'self'`).
fn csp(host: Option<&str>) -> String {
    let ws = host
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; \
         media-src 'self' blob:; connect-src 'self'{ws}; worker-src 'self' blob:; child-src 'self' blob:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Adds the security headers to every response.
pub async fn headers(req: Request, next: Next) -> Response {
    let host = host_of(&req);
    let mut resp = next.run(req).await;
    set_headers(resp.headers_mut(), host.as_deref());
    resp
}

fn set_headers(h: &mut HeaderMap, host: Option<&str>) {
    // A response with a stricter policy of its own (an attachment shown inline) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&csp(host)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// A short random id to find an error in the log.
pub fn incident_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A panic in a handler: `500` with an id, logged as an error under that id.
pub fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let what = if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "a panic".to_string()
    };
    let id = incident_id();
    tracing::error!(error_id = %id, "a request handler panicked: {what}");
    let mut r = (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(crate::error::ErrorBody {
            error: format!("internal error (error id {id})"),
            id: Some(id),
        }),
    )
        .into_response();
    set_headers(r.headers_mut(), None);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = Hosts::new(&["IOC.nghean.gov.vn".into(), "10.20.0.5:8080".into()]);
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:1234",
            "[::1]:80",
            "127.8.9.10",
            "ioc.nghean.gov.vn",
            "ioc.nghean.gov.vn.:443",
            "10.20.0.5:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8080",
            "10.20.0.5:9090",
            "10.20.0.6:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "",
            "[::1",
            "a b",
            "ioc.nghean.gov.vn@attacker.example",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        assert!(h.allows_origin("http://127.0.0.1:5555"));
        assert!(h.allows_origin("https://ioc.nghean.gov.vn"));
        assert!(!h.allows_origin("null"));
        assert!(!h.allows_origin("http://attacker.example"));
        assert!(!h.allows_origin("file://"));
        assert!(!h.allows_origin("http://127.0.0.1/evil"));
    }
}
