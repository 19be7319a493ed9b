//! The OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`, `/v1/completions`.

#[cfg(test)]
mod fuzz;
mod pipeline;
mod respond;
mod types;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use self::respond::Kind;
use self::types::{ChatRequest, CompletionRequest};
use super::error::ApiError;
use super::state::{AppState, PIPELINE_MODEL};
use super::workspace;
use crate::engine::Prompt;

pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .model_ids()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": state.started(), "owned_by": "quorum"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    if let Some(alias) = pipeline_workspace(&req.model) {
        let tools = state.tools_for(workspace::requested(alias, &headers)?.as_deref())?;
        return pipeline::chat(state, tools, req).await;
    }
    let role = state.role(&req.model)?;
    let prompt = Prompt::Chat(req.messages()?);
    respond::run(&role, Kind::Chat, &req.model, prompt, &mut req.options).await
}

pub async fn completions(
    State(state): State<AppState>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    if pipeline_workspace(&req.model).is_some() {
        return Err(ApiError::invalid(
            format!("the `{PIPELINE_MODEL}` pipeline answers chats: use /v1/chat/completions"),
            Some("model"),
        ));
    }
    let role = state.role(&req.model)?;
    let prompt = Prompt::Text(req.prompt()?);
    respond::run(&role, Kind::Text, &req.model, prompt, &mut req.options).await
}

/// For the pipeline's model ids, the workspace the id names: `Some(None)` for `quorum`,
/// `Some(Some(NAME))` for `quorum@NAME`; `None` for a role's model.
fn pipeline_workspace(model: &str) -> Option<Option<&str>> {
    match model.split_once('@') {
        Some((PIPELINE_MODEL, name)) => Some(Some(name)),
        None if model == PIPELINE_MODEL => Some(None),
        _ => None,
    }
}
