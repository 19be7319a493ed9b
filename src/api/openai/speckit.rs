//! `/speckit.NAME ...` as the last user message to `model: "quorum"`: the command's
//! progress as `reasoning_content`, its report as `content`.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::respond::{unique_suffix, unix_now};
use crate::api::speckit::Said;

/// The chat answer's pieces: a reasoning line or the content.
fn delta(said: Said) -> (Option<String>, Option<String>, Option<Value>) {
    match said {
        Said::Progress(line) => (Some(format!("{line}\n")), None, None),
        Said::Done(Ok(report)) => {
            let json = serde_json::to_value(&report).expect("reports serialize");
            (None, Some(report.summary()), Some(json))
        }
        Said::Done(Err(e)) => (None, Some(format!("The command failed: {e}")), None),
    }
}

pub async fn answer(said: impl Stream<Item = Said> + Send + 'static, model: String, stream: bool) -> Response {
    let id = format!("chatcmpl-{}", unique_suffix());
    let created = unix_now();
    if !stream {
        let (mut reasoning, mut content, mut report) = (String::new(), String::new(), Value::Null);
        let mut said = Box::pin(said);
        while let Some(piece) = said.next().await {
            let (r, c, j) = delta(piece);
            reasoning.push_str(&r.unwrap_or_default());
            content.push_str(&c.unwrap_or_default());
            report = j.unwrap_or(report);
        }
        return Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                         "message": {"role": "assistant", "content": content, "reasoning_content": reasoning}}],
            "quorum_speckit": report,
        }))
        .into_response();
    }
    let chunk = move |delta: Value, finish: Option<&str>| {
        let body = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        Ok::<_, Infallible>(SseEvent::default().data(body.to_string()))
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let last = chunk(json!({}), Some("stop"));
    let each = chunk.clone();
    let body = said.map(move |piece| match delta(piece) {
        (Some(line), _, _) => each(json!({"reasoning_content": line}), None),
        (_, content, _) => each(json!({"content": content.unwrap_or_default()}), None),
    });
    let done = Ok(SseEvent::default().data("[DONE]"));
    let all = futures::stream::iter([first]).chain(body).chain(futures::stream::iter([last, done]));
    Sse::new(all).keep_alive(KeepAlive::default()).into_response()
}
