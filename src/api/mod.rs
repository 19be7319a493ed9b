//! The HTTP interface (the only axum code): OpenAI-compatible routes and `/health`.

mod access;
mod anthropic;
pub mod error;
mod infill;
mod media;
mod metrics;
mod openai;
mod responses;
mod speckit;
mod state;
mod tasks;
mod tools;
mod workflow;
mod workspace;

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;

pub use access::{allowed_hosts, Access, DEFAULT_BODY_LIMIT};
pub use state::{AppState, PIPELINE_MODEL};

use self::error::ApiError;

pub fn router(state: AppState, access: Access, hosts: Option<Vec<String>>) -> Router {
    let (mcp, sessions) = crate::tools::mcp::http_service(state.workspaces().clone(), hosts.clone());
    let mcp = Router::new()
        .fallback_service(mcp)
        .layer(axum::middleware::from_fn(move |req, next| access::mcp_guard(sessions.clone(), req, next)));
    let router = Router::new()
        .nest_service("/mcp", mcp)
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{id}", get(openai::model))
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/completions", post(openai::completions))
        .route("/infill", post(infill::infill))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::get).delete(responses::delete))
        .route(
            "/v1/audio/transcriptions",
            post(media::transcriptions).layer(axum::extract::DefaultBodyLimit::max(access::AUDIO_BODY_LIMIT)),
        )
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/api/task/{id}", get(tasks::show))
        .route("/api/tasks", get(tasks::list))
        .route("/api/workflow", post(workflow::start))
        .route("/api/task/{id}/events", get(workflow::events))
        .route("/api/task/{id}/resume", post(workflow::resume))
        .route("/api/task/{id}/cancel", post(workflow::cancel))
        .route("/api/mcp/tools", get(tools::list))
        .route("/api/mcp/tool", post(tools::call))
        .route("/api/tools/{name}", post(tools::call_one))
        .fallback(|uri: axum::http::Uri| async move {
            let mut e = ApiError::invalid("Unknown route; see /v1/models, /v1/chat/completions, /v1/completions, /v1/messages, /api/tasks, /api/mcp/tools, /mcp, /health", None);
            e.status = StatusCode::NOT_FOUND;
            access::in_route_format(uri.path(), e)
        })
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            let mut e = ApiError::invalid(format!("{method} is not allowed on {}", uri.path()), None);
            e.status = StatusCode::METHOD_NOT_ALLOWED;
            e.code = Some("method_not_allowed");
            access::in_route_format(uri.path(), e)
        })
        .layer(axum::extract::DefaultBodyLimit::max(access.body_limit))
        .with_state(state);
    let (access, hosts) = (Arc::new(access), hosts.map(Arc::new));
    router.layer(axum::middleware::from_fn(move |req, next| access::guard(access.clone(), hosts.clone(), req, next)))
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let (ready, body) = state.health();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics())
}

/// Serves on a listener the caller bound (tests bind 127.0.0.1:0) until `shutdown`, with
/// the default access rules (no key, loopback origins).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Access::default(), shutdown).await
}

/// [`serve`] under the given access rules.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?.ip();
    if !bound.is_loopback() && !access.requires_key() {
        tracing::warn!(%bound, "serving beyond this machine without an API key: anyone who can reach it can read the workspace and run its tests; set --api-key");
    }
    let hosts = allowed_hosts(bound);
    axum::serve(listener, router(state, access, hosts)).with_graceful_shutdown(shutdown).await
}
