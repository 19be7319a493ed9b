//! Which workspace a request names: its body's `workspace` field or a `quorum@NAME`
//! model (`named`), else the `X-Quorum-Workspace` header, else the server's default.

use axum::http::HeaderMap;

use super::error::ApiError;

pub const HEADER: &str = "x-quorum-workspace";

/// The name a request gives, if any; a header that is not text is refused.
pub fn requested(named: Option<&str>, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(name) = named.filter(|n| !n.trim().is_empty()) {
        return Ok(Some(name.to_string()));
    }
    match headers.get(HEADER) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(name) => Ok(Some(name.to_string()).filter(|n| !n.trim().is_empty())),
            Err(_) => Err(ApiError::invalid(format!("the {HEADER} header must be a path in ASCII"), None)),
        },
    }
}
