//! The pipeline's own routes: `POST /api/workflow` starts a task and streams its events
//! as SSE; `GET /api/task/{id}/events` re-attaches to a task (replaying its log from
//! `?from=N`, then following it live); `POST /api/task/{id}/resume` resumes an interrupted
//! task after its last completed stage.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::speckit::{self, Said};
use super::{media, workspace, AppState};
use crate::pipeline::PipelineError;
use crate::state::{Cancel, TaskEvent, TaskStatus};

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> ApiError {
        match e {
            PipelineError::Invalid(m) => ApiError::invalid(m, None),
            PipelineError::Busy(_) => {
                let mut e = ApiError::invalid(e.to_string(), None);
                e.status = StatusCode::CONFLICT;
                e
            }
            PipelineError::Finished { .. } => {
                let mut e = ApiError::invalid(e.to_string(), None);
                e.status = StatusCode::CONFLICT;
                e.code = Some("task_finished");
                e
            }
            PipelineError::State(e) => e.into(),
            PipelineError::Tool(e) => e.into(),
            other => ApiError::server(other.to_string()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRequest {
    /// The task in words; may be empty when audio or images say it.
    #[serde(default)]
    task: String,
    /// A spoken task: an audio file (WAV, MP3, FLAC, OGG), base64.
    audio: Option<String>,
    /// Screenshots: data URLs or files in the workspace; their text (OCR) joins the task.
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    apply: bool,
    #[serde(default)]
    options: Value,
    /// The server's default workspace, or one under its roots (a path, or a name under a
    /// root); the `X-Quorum-Workspace` header says the same.
    workspace: Option<String>,
}

fn sse(first: Option<SseEvent>, events: impl Stream<Item = TaskEvent> + Send + 'static) -> Response {
    let events = events.map(|e| {
        Ok::<_, Infallible>(
            SseEvent::default().event(e.kind.clone()).data(serde_json::to_string(&e).expect("events serialize")),
        )
    });
    let stream = futures::stream::iter(first.map(Ok)).chain(events);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<WorkflowRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let tools = state.tools_for(workspace::requested(req.workspace.as_deref(), &headers)?.as_deref())?;
    let pipeline = state.pipeline()?;
    let text = media::task_text(&state, &tools, &req.task, req.audio.as_deref(), &req.images).await?;
    if let Some((name, arguments)) = crate::spec::slash_command(&text) {
        let first = SseEvent::default().event("speckit").data(json!({"command": name}).to_string());
        let said = speckit::start(&state, tools, name, arguments, req.options)?;
        return Ok(speckit_sse(first, said));
    }
    let task = pipeline.create_on(&tools, &text, req.apply, req.options).await?;
    let events = pipeline.tasks().follow(task.id.clone(), 0);
    pipeline.start(&task.id).await?;
    let first = SseEvent::default().event("task").data(json!({"id": task.id}).to_string());
    Ok(sse(Some(first), events))
}

/// A spec-kit command's stream: `progress` lines, then its `report` (or `error`).
fn speckit_sse(first: SseEvent, said: impl Stream<Item = Said> + Send + 'static) -> Response {
    let events = said.map(|piece| {
        let event = match piece {
            Said::Progress(line) => SseEvent::default().event("progress").data(json!({"line": line}).to_string()),
            Said::Done(Ok(report)) => {
                SseEvent::default().event("report").data(serde_json::to_string(&report).expect("reports serialize"))
            }
            Said::Done(Err(e)) => SseEvent::default().event("error").data(json!({"message": e}).to_string()),
        };
        Ok::<_, Infallible>(event)
    });
    let stream = futures::stream::iter([Ok(first)]).chain(events);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    from: u64,
}

pub async fn events(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(query) = query.map_err(|e| ApiError::invalid(e.body_text(), Some("from")))?;
    let tasks = state.tasks();
    if tasks.get(&id).await?.is_none() {
        return Err(ApiError::task_not_found(&id));
    }
    Ok(sse(None, tasks.follow(id, query.from)))
}

/// `POST /api/task/{id}/cancel`: stops the task (see `Pipeline::cancel`) and answers its
/// status; 409 when it had already ended.
pub async fn cancel(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    if state.tasks().get(&id).await?.is_none() {
        return Err(ApiError::task_not_found(&id));
    }
    let task = match state.pipeline() {
        Ok(pipeline) => pipeline.cancel(&id).await?,
        // Nothing runs here before the models are loaded; the store cancels what runs nowhere.
        Err(_) => match state.tasks().cancel(&id).await? {
            Cancel::Done(task) => *task,
            Cancel::Finished(status) => return Err(PipelineError::Finished { id, status }.into()),
            Cancel::Unknown => return Err(ApiError::task_not_found(&id)),
            Cancel::Requested => {
                return Ok((StatusCode::ACCEPTED, Json(json!({"id": id, "status": "cancel_requested"}))).into_response())
            }
        },
    };
    let status = if task.status == TaskStatus::Cancelled { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(json!({"id": id, "status": task.status, "error": task.error}))).into_response())
}

pub async fn resume(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let pipeline = state.pipeline()?;
    let task = pipeline.tasks().get(&id).await?.ok_or_else(|| ApiError::task_not_found(&id))?;
    if task.status != TaskStatus::Interrupted {
        let mut e = ApiError::invalid(format!("task `{id}` is {}; only interrupted tasks resume", task.status), None);
        e.status = StatusCode::CONFLICT;
        return Err(e);
    }
    pipeline.start(&id).await?;
    let body =
        json!({"id": id, "resumed_after": task.last_completed_stage, "events": format!("/api/task/{id}/events")});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
