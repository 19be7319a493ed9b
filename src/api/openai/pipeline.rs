//! `model: "quorum"` on `/v1/chat/completions`: the conversation's last user message runs
//! through the pipeline, on the workspace `quorum@NAME` or `X-Quorum-Workspace` names. Progress streams as `reasoning_content` deltas (shown as
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
use crate::api::state::AppState;
use crate::engine::Prompt;
use crate::models::Role;
use crate::pipeline::{is_auxiliary_request, Event, Logged, Pipeline};
use crate::state::TaskStatus;
use crate::tools::Tools;

/// The answer text, piece by piece: the explanation and the diff in a fenced block, then,
/// when the task failed, a separator and the reason (after the diff, when it has one).
#[derive(Default)]
struct Answer {
    diff_sent: bool,
}

impl Answer {
    fn push(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::Diff { diff, explanation, .. } => {
                let mut text = explanation.trim().to_string();
                if diff.trim().is_empty() {
                    text.push_str("\n\nNo change was produced.");
                } else {
                    let diff = if diff.ends_with('\n') { diff.clone() } else { format!("{diff}\n") };
                    text.push_str(&format!("\n\n```diff\n{diff}```"));
                    self.diff_sent = true;
                }
                Some(text)
            }
            Event::Finished { status: TaskStatus::Failed, error } => {
                let reason = format!("The pipeline failed: {}", error.as_deref().unwrap_or("unknown error"));
                Some(if self.diff_sent { format!("\n\n---\n\n{reason}") } else { reason })
            }
            _ => None,
        }
    }
}

pub async fn chat(state: AppState, tools: Tools, mut req: ChatRequest) -> Result<Response, ApiError> {
    let messages = req.messages()?;
    let last = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.clone())
        .ok_or_else(|| ApiError::invalid("the conversation has no user message", Some("messages")))?;
    if is_auxiliary_request(&last) {
        let planner = state.role(&Role::Planner.to_string())?;
        return respond::run(&planner, Kind::Chat, &req.model, Prompt::Chat(messages), &mut req.options, None).await;
    }
    let (options, detach) = detach(req.quorum_options.take())?;
    if let Some((name, arguments)) = crate::spec::slash_command(&last) {
        let said = crate::api::speckit::start(&state, tools, name, arguments, options)?;
        return Ok(super::speckit::answer(said, req.model, req.options.stream).await);
    }
    let pipeline = state.pipeline()?;
    let task = pipeline.create_on(&tools, &last, false, options).await?;
    let events = pipeline.follow(&task.id, 0);
    pipeline.start(&task.id).await?;
    // A client that goes away (the stream or this request dropped) cancels its task,
    // unless it asked to leave it running.
    let mut guard =
        (!detach).then(|| CancelOnDrop { pipeline: pipeline.clone(), id: task.id.clone(), finished: false });
    let events = events.inspect(move |e| {
        if let Some(guard) = guard.as_mut() {
            guard.finished |= matches!(e.event, Event::Finished { .. });
        }
    });
    let id = format!("chatcmpl-{}", unique_suffix());
    let created = unix_now();
    if req.options.stream {
        return Ok(stream(events, id, req.model, created).into_response());
    }
    let mut reasoning = String::new();
    let mut content = String::new();
    let mut answer = Answer::default();
    let mut events = Box::pin(events);
    while let Some(e) = events.next().await {
        if let Some(line) = e.describe() {
            reasoning.push_str(&line);
            reasoning.push('\n');
        }
        if let Some(text) = answer.push(&e.event) {
            content.push_str(&text);
        }
    }
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                     "message": {"role": "assistant", "content": content, "reasoning_content": reasoning}}],
        "quorum_task": task.id,
    }))
    .into_response())
}

/// Cancels the task when dropped before it finished.
struct CancelOnDrop {
    pipeline: Pipeline,
    id: String,
    finished: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (pipeline, id) = (self.pipeline.clone(), self.id.clone());
        tracing::info!(task = %id, "the chat client went away; cancelling its task");
        tokio::spawn(async move {
            if let Err(e) = pipeline.cancel(&id).await {
                tracing::warn!(task = %id, error = %e, "cancelling the task failed");
            }
        });
    }
}

/// The request's `options` (quorum's extension): pipeline options, and `detach` to keep
/// the task running when the client goes away.
fn detach(options: Option<Value>) -> Result<(Value, bool), ApiError> {
    match options {
        None | Some(Value::Null) => Ok((Value::Null, false)),
        Some(Value::Object(mut fields)) => {
            let detach = match fields.remove("detach") {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => return Err(ApiError::invalid("options.detach must be true or false", Some("options"))),
            };
            Ok((Value::Object(fields), detach))
        }
        Some(_) => Err(ApiError::invalid("options must be a JSON object", Some("options"))),
    }
}

fn stream(
    events: impl Stream<Item = Logged> + Send + 'static,
    id: String,
    model: String,
    created: u64,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let chunk = move |delta: Value, finish: Option<&str>| {
        let body = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        Ok::<_, Infallible>(SseEvent::default().data(body.to_string()))
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let chunk2 = chunk.clone();
    let mut answer = Answer::default();
    let body = events.flat_map(move |e| {
        let mut out = Vec::new();
        if let Some(line) = e.describe() {
            out.push(chunk2(json!({"reasoning_content": format!("{line}\n")}), None));
        }
        if let Some(text) = answer.push(&e.event) {
            out.push(chunk2(json!({"content": text}), None));
        }
        futures::stream::iter(out)
    });
    let last = chunk(json!({}), Some("stop"));
    let done = Ok(SseEvent::default().data("[DONE]"));
    let all = futures::stream::iter([first]).chain(body).chain(futures::stream::iter([last, done]));
    Sse::new(all).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_task_keeps_its_diff_and_says_why_after_it() {
        let mut answer = Answer::default();
        let diff = Event::Diff {
            diff: "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b".into(),
            explanation: "Changed a.".into(),
            applied: false,
        };
        let text = answer.push(&diff).unwrap();
        assert!(text.starts_with("Changed a.\n\n```diff\n--- a/x.py\n") && text.ends_with("+b\n```"), "{text}");
        let failed = Event::Finished { status: TaskStatus::Failed, error: Some("the time budget is spent".into()) };
        assert_eq!(answer.push(&failed).unwrap(), "\n\n---\n\nThe pipeline failed: the time budget is spent");
        assert_eq!(Answer::default().push(&failed).unwrap(), "The pipeline failed: the time budget is spent");
    }
}
