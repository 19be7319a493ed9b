//! `model: "quorum"` on `/v1/chat/completions`: the conversation's last user message runs
//! through the pipeline. Progress streams as `reasoning_content` deltas (shown as
//! collapsible thinking by Open WebUI and Continue); the answer (explanation and the diff
//! in a fenced block) comes as `content`. Requests a chat front-end sends on its own
//! (titles, tags, follow-ups) are answered by one model instead.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::respond::{self, unique_suffix, unix_now, Kind};
use super::types::ChatRequest;
use crate::api::error::ApiError;
use crate::api::state::{AppState, PIPELINE_MODEL};
use crate::engine::Prompt;
use crate::models::Role;
use crate::pipeline::{describe, is_auxiliary_request};
use crate::state::TaskEvent;

/// The answer text: the explanation and the diff, or why the task failed.
fn answer(e: &TaskEvent) -> Option<String> {
    match e.kind.as_str() {
        "diff" => {
            let diff = e.data["diff"].as_str().unwrap_or_default();
            let mut text = e.data["explanation"].as_str().unwrap_or_default().trim().to_string();
            if diff.trim().is_empty() {
                text.push_str("\n\nNo change was produced.");
            } else {
                text.push_str(&format!("\n\n```diff\n{diff}```"));
            }
            Some(text)
        }
        "finished" if e.data["status"] == "failed" => Some(format!("The pipeline failed: {}", e.data["error"].as_str().unwrap_or("unknown error"))),
        _ => None,
    }
}

pub async fn chat(state: AppState, mut req: ChatRequest) -> Result<Response, ApiError> {
    let messages = req.messages()?;
    let last = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone())
        .ok_or_else(|| ApiError::invalid("the conversation has no user message", Some("messages")))?;
    if is_auxiliary_request(&last) {
        let planner = state.role(&Role::Planner.to_string())?;
        return respond::run(&planner, Kind::Chat, PIPELINE_MODEL, Prompt::Chat(messages), &mut req.options).await;
    }
    let pipeline = state.pipeline()?;
    let task = pipeline.create(&last, false, Value::Null).await?;
    let events = pipeline.tasks().follow(task.id.clone(), 0);
    pipeline.start(&task.id).await?;
    let id = format!("chatcmpl-{}", unique_suffix());
    let created = unix_now();
    if req.options.stream {
        return Ok(stream(events, id, created).into_response());
    }
    let mut reasoning = String::new();
    let mut content = String::new();
    let mut events = Box::pin(events);
    while let Some(e) = events.next().await {
        if let Some(line) = describe(&e) {
            reasoning.push_str(&line);
            reasoning.push('\n');
        }
        if let Some(text) = answer(&e) {
            content = text;
        }
    }
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": PIPELINE_MODEL,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": content, "reasoning_content": reasoning}}],
        "quorum_task": task.id,
    }))
    .into_response())
}

fn stream(events: impl Stream<Item = TaskEvent> + Send + 'static, id: String, created: u64) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let chunk = move |delta: Value, finish: Option<&str>| {
        let body = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": PIPELINE_MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        Ok::<_, Infallible>(SseEvent::default().data(body.to_string()))
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let chunk2 = chunk.clone();
    let body = events.flat_map(move |e| {
        let mut out = Vec::new();
        if let Some(line) = describe(&e) {
            out.push(chunk2(json!({"reasoning_content": format!("{line}\n")}), None));
        }
        if let Some(text) = answer(&e) {
            out.push(chunk2(json!({"content": text}), None));
        }
        futures::stream::iter(out)
    });
    let last = chunk(json!({}), Some("stop"));
    let done = Ok(SseEvent::default().data("[DONE]"));
    let all = futures::stream::iter([first]).chain(body).chain(futures::stream::iter([last, done]));
    Sse::new(all).keep_alive(KeepAlive::default())
}
