//! `GET /api/task/{id}` (the record with its event log) and `GET /api/tasks` (a list).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::state::TaskStatus;

pub async fn show(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = id?;
    let tasks = state.tasks();
    let task = tasks.get(&id).await?.ok_or_else(|| ApiError::task_not_found(&id))?;
    let events = tasks.events(&id, 0).await?;
    let mut body = serde_json::to_value(task).expect("tasks serialize");
    body["events"] = serde_json::to_value(events).expect("events serialize");
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text(), Some("limit")))?;
    let status = match query.status.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(s.parse::<TaskStatus>().map_err(|e| ApiError::invalid(e, Some("status")))?),
    };
    let tasks = state.tasks().list(status, query.limit.unwrap_or(100)).await?;
    Ok(Json(serde_json::json!({ "tasks": tasks })))
}
