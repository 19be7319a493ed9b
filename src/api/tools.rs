//! The codebase tools over REST: `GET /api/mcp/tools` (names, descriptions, input
//! schemas), `POST /api/mcp/tool` (`{"name", "arguments"}`) and `POST /api/tools/{name}`
//! (the arguments as the body). Results are the tool's JSON; failures are error JSON with
//! a status that fits (400 bad arguments, 403 refused path, 404 unknown, 422 unavailable).
//! The `X-Quorum-Workspace` header picks one of the server's workspaces.

use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::{workspace, AppState};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(serde_json::json!({ "tools": state.tools().list() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    name: String,
    #[serde(default)]
    arguments: Value,
}

pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Call>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(call) = body?;
    let tools = state.tools_for(workspace::requested(None, &headers)?.as_deref())?;
    Ok(Json(tools.call(&call.name, call.arguments).await?))
}

pub async fn call_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name?;
    let Json(arguments) = body?;
    let tools = state.tools_for(workspace::requested(None, &headers)?.as_deref())?;
    Ok(Json(tools.call(&name, arguments).await?))
}
