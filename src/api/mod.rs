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

/// `mcp_hosts`: Host names `/mcp` accepts besides the loopback ones (the address a
/// non-loopback server is bound to).
pub fn router(state: AppState, mcp_hosts: &[String]) -> Router {
    let mcp = crate::tools::mcp::http_service(state.tools().clone(), mcp_hosts);
    Router::new()
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
        .with_state(state)
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
    let bound = listener.local_addr()?.ip();
    let hosts: Vec<String> = if bound.is_loopback() || bound.is_unspecified() { Vec::new() } else { vec![bound.to_string()] };
    axum::serve(listener, router(state, &hosts)).with_graceful_shutdown(shutdown).await
}
