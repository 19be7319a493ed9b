//! The HTTP interface (the only axum code): OpenAI-compatible routes and `/health`.

pub mod error;
mod metrics;
mod openai;
mod state;
mod tasks;
mod tools;
mod workflow;

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;

pub use state::{AppState, PIPELINE_MODEL};

use self::error::ApiError;

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

async fn check_host(
    hosts: std::sync::Arc<Vec<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let host = request.headers().get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if host.is_empty() || hosts.iter().any(|h| h == name) {
        return next.run(request).await;
    }
    let mut e = ApiError::invalid(
        format!("Host `{host}` is not served here (DNS-rebinding protection); start quorum with --host to serve other addresses"),
        None,
    );
    e.status = StatusCode::FORBIDDEN;
    e.into_response()
}

pub fn router(state: AppState, hosts: Option<Vec<String>>) -> Router {
    let mcp = crate::tools::mcp::http_service(state.tools().clone(), hosts.clone());
    let router = Router::new()
        .nest_service("/mcp", mcp)
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/api/task/{id}", get(tasks::show))
        .route("/api/tasks", get(tasks::list))
        .route("/api/workflow", post(workflow::start))
        .route("/api/task/{id}/events", get(workflow::events))
        .route("/api/task/{id}/resume", post(workflow::resume))
        .route("/api/mcp/tools", get(tools::list))
        .route("/api/mcp/tool", post(tools::call))
        .route("/api/tools/{name}", post(tools::call_one))
        .fallback(|| async {
            let mut e = ApiError::invalid("Unknown route; see /v1/models, /v1/chat/completions, /v1/completions, /api/tasks, /api/mcp/tools, /mcp, /health", None);
            e.status = StatusCode::NOT_FOUND;
            e
        })
        .with_state(state);
    match hosts {
        Some(hosts) => {
            let hosts = std::sync::Arc::new(hosts);
            router.layer(axum::middleware::from_fn(move |req, next| check_host(hosts.clone(), req, next)))
        }
        None => router,
    }
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, body) = state.health();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics())
}

/// Serves on a listener the caller bound (tests bind 127.0.0.1:0) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hosts = allowed_hosts(listener.local_addr()?.ip());
    axum::serve(listener, router(state, hosts)).with_graceful_shutdown(shutdown).await
}
