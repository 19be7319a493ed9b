//! Who may talk to the server: the `Host` a request names (DNS-rebinding protection), the
//! `Origin` a browser sends, and API keys. One middleware in front of every route; each
//! refusal is answered in the error format of the route it was sent to.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::tools::mcp::{Sessions, MAX_SESSIONS};

/// Request bodies larger than this get 413 unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The server's access rules.
#[derive(Debug, Clone)]
pub struct Access {
    /// SHA-256 of each accepted key: comparing digests in constant time does not tell an
    /// attacker how long a key is or how much of it matched.
    keys: Vec<[u8; 32]>,
    /// Origins allowed besides loopback ones (`http://host:port`, exactly as browsers send them).
    origins: Vec<String>,
    /// Most bytes of a request body.
    pub body_limit: usize,
}

impl Default for Access {
    fn default() -> Access {
        Access { keys: Vec::new(), origins: Vec::new(), body_limit: DEFAULT_BODY_LIMIT }
    }
}

impl Access {
    pub fn new(keys: &[String], origins: &[String], body_limit: usize) -> Access {
        Access {
            keys: keys.iter().map(|k| digest(k.as_bytes())).collect(),
            origins: origins.iter().map(|o| o.trim_end_matches('/').to_string()).collect(),
            body_limit,
        }
    }

    pub fn requires_key(&self) -> bool {
        !self.keys.is_empty()
    }

    /// A key from `Authorization: Bearer KEY` or `x-api-key: KEY` that matches one of ours.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.keys.is_empty() {
            return true;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let given = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(given) = given else { return false };
        let given = digest(given.trim().as_bytes());
        // Every key is compared, so the time taken does not say which one matched.
        self.keys.iter().fold(false, |found, key| found | constant_time_eq(key, &given))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        is_loopback_origin(origin) || self.origins.iter().any(|o| o == origin || o == "*")
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, with any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// The `Host` names requests may carry: loopback ones, plus the address of a server bound
/// to one non-loopback address; `None` (bound to every address) checks nothing. A web
/// page that rebinds its own name to 127.0.0.1 sends its name, and is refused.
pub fn allowed_hosts(bound: std::net::IpAddr) -> Option<Vec<String>> {
    if bound.is_unspecified() {
        return None;
    }
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !bound.is_loopback() {
        hosts.push(bound.to_string());
    }
    Some(hosts)
}

fn host_allowed(hosts: &[String], headers: &HeaderMap) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if host.is_empty() || hosts.iter().any(|h| h == name) {
        return Ok(());
    }
    Err(format!(
        "Host `{host}` is not served here (DNS-rebinding protection); start quorum with --host to serve other addresses"
    ))
}

/// `error` in the format of the route `path` belongs to: JSON-RPC's on `/mcp`, as MCP
/// clients read errors; Anthropic's on `/v1/messages`; OpenAI's elsewhere.
pub fn in_route_format(path: &str, error: ApiError) -> Response {
    if path.starts_with("/mcp") {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": error.message}});
        (error.status, axum::Json(body)).into_response()
    } else if path.starts_with("/v1/messages") {
        super::anthropic::AnthropicError::from(error).into_response()
    } else {
        error.into_response()
    }
}

/// A refusal in the format of the route `path` belongs to.
pub fn refusal(path: &str, status: StatusCode, message: String, code: &'static str) -> Response {
    let kind = if status == StatusCode::UNAUTHORIZED { "authentication_error" } else { "invalid_request_error" };
    let mut response = in_route_format(path, ApiError { status, message, kind, param: None, code: Some(code) });
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The middleware: host, origin, key (every route but `/health`), body size.
pub async fn guard(access: Arc<Access>, hosts: Option<Arc<Vec<String>>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let headers = request.headers();
    if let Some(hosts) = &hosts {
        if let Err(message) = host_allowed(hosts, headers) {
            return refusal(&path, StatusCode::FORBIDDEN, message, "host_not_allowed");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !access.origin_allowed(origin) {
            let message = format!(
                "Origin `{origin}` may not use this server; loopback origins may, and others listed in allowed_origins"
            );
            return refusal(&path, StatusCode::FORBIDDEN, message, "origin_not_allowed");
        }
    }
    if path != "/health" && !access.authorized(headers) {
        let message = "A valid API key is required: send `Authorization: Bearer KEY` (or `x-api-key: KEY`)".to_string();
        return refusal(&path, StatusCode::UNAUTHORIZED, message, "invalid_api_key");
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let limit = access.limit_for(&path);
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(&path, limit);
    }
    // A body without a length (chunked) is cut off at the limit as it streams in.
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// In front of `/mcp`: a new session past [`MAX_SESSIONS`] waits for one to close, and
/// what rmcp answers in plain text (a body it cannot parse, an unknown session) is
/// answered as a JSON-RPC error.
pub async fn mcp_guard(sessions: Sessions, request: Request, next: Next) -> Response {
    let opens = request.method() == Method::POST && !request.headers().contains_key("mcp-session-id");
    if opens && sessions.open().await >= MAX_SESSIONS {
        let message = format!(
            "{MAX_SESSIONS} MCP sessions are open; close one (DELETE /mcp with its Mcp-Session-Id) \
             or wait for idle ones to end (after 5 minutes)"
        );
        let mut response = refusal("/mcp", StatusCode::SERVICE_UNAVAILABLE, message, "too_many_sessions");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let response = next.run(request).await;
    // rmcp's own refusals carry no content type.
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(response.status().is_client_error() && plain) {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    refusal("/mcp", status, String::from_utf8_lossy(&text).into_owned(), "mcp_error")
}

/// The transcription route takes audio files up to OpenAI's limit, which is more than a
/// JSON body needs.
pub const AUDIO_BODY_LIMIT: usize = crate::media::audio::MAX_AUDIO_BYTES + (1 << 20);

impl Access {
    fn limit_for(&self, path: &str) -> usize {
        if path == "/v1/audio/transcriptions" {
            self.body_limit.max(AUDIO_BODY_LIMIT)
        } else {
            self.body_limit
        }
    }
}

pub fn too_large(path: &str, limit: usize) -> Response {
    let message = format!("The request body is larger than {limit} bytes (max_body_bytes)");
    refusal(path, StatusCode::PAYLOAD_TOO_LARGE, message, "request_too_large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn keys_are_read_from_either_header_and_all_of_them_count() {
        let access = Access::new(&["first".into(), "second".into()], &[], 1);
        assert!(access.authorized(&headers(&[("authorization", "Bearer second")])));
        assert!(access.authorized(&headers(&[("x-api-key", "first")])));
        assert!(!access.authorized(&headers(&[("authorization", "Bearer secon")])));
        assert!(!access.authorized(&headers(&[("authorization", "Basic first")])));
        assert!(!access.authorized(&headers(&[])));
        assert!(Access::default().authorized(&headers(&[])));
    }

    #[test]
    fn loopback_and_listed_origins_pass() {
        let access = Access::new(&[], &["https://ide.example/".into()], 1);
        for origin in ["http://localhost:3000", "http://127.0.0.1", "https://[::1]:8443", "https://ide.example"] {
            assert!(access.origin_allowed(origin), "{origin}");
        }
        for origin in
            ["http://evil.example", "null", "http://localhost.evil.example", "http://127.0.0.1.evil.example:80"]
        {
            assert!(!access.origin_allowed(origin), "{origin}");
        }
    }
}
