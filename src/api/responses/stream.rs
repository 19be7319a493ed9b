//! Responses streaming events: `response.created` and `response.in_progress`, the message
//! item with its text deltas, each function call with its arguments, then
//! `response.completed` (or `response.incomplete`) carrying the whole output, stored first.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{stream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{Output, Save, Shell};
use crate::api::openai::StreamedChoice;
use crate::engine::{Event, FinishReason, Generation, Parsed, ToolParser};

/// Event numbering and the open message item.
struct Events {
    sequence: u64,
    message_id: String,
    text: String,
    open: bool,
    end: Option<(Output, Option<FinishReason>, u32)>,
    failed: Option<String>,
}

impl Events {
    fn frame(&mut self, mut data: Value) -> SseEvent {
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let name = data["type"].as_str().unwrap_or("response").to_string();
        SseEvent::default().event(name).data(data.to_string())
    }

    fn text(&mut self, delta: &str, out: &mut Vec<SseEvent>) {
        if delta.is_empty() {
            return;
        }
        if !self.open {
            self.open = true;
            let item = json!({"id": self.message_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []});
            out.push(self.frame(json!({"type": "response.output_item.added", "output_index": 0, "item": item})));
            let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            let added = json!({"type": "response.content_part.added", "item_id": self.message_id, "output_index": 0, "content_index": 0, "part": part});
            out.push(self.frame(added));
        }
        self.text.push_str(delta);
        let data = json!({"type": "response.output_text.delta", "item_id": self.message_id, "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []});
        out.push(self.frame(data));
    }

    /// Closes the message item and writes the calls; the output as the response has it.
    fn finish(&mut self, parsed: &Parsed, out: &mut Vec<SseEvent>) -> Output {
        let mut output = Output::new(parsed);
        output.message_id = self.message_id.clone();
        output.text = self.text.clone();
        let mut index = 0;
        if self.open {
            let id = self.message_id.clone();
            let text = self.text.clone();
            out.push(self.frame(json!({"type": "response.output_text.done", "item_id": id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []})));
            let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
            out.push(self.frame(json!({"type": "response.content_part.done", "item_id": id, "output_index": 0, "content_index": 0, "part": part})));
            out.push(self.frame(json!({"type": "response.output_item.done", "output_index": 0, "item": output.message_item("completed")})));
            index = 1;
        }
        for (item_id, call) in &output.calls {
            let added = Output::call_item(item_id, call, "in_progress");
            let mut added = added;
            added["arguments"] = json!("");
            out.push(self.frame(json!({"type": "response.output_item.added", "output_index": index, "item": added})));
            out.push(self.frame(json!({"type": "response.function_call_arguments.delta", "item_id": item_id, "output_index": index, "delta": call.arguments})));
            out.push(self.frame(json!({"type": "response.function_call_arguments.done", "item_id": item_id, "output_index": index, "name": call.name, "arguments": call.arguments})));
            out.push(self.frame(json!({"type": "response.output_item.done", "output_index": index, "item": Output::call_item(item_id, call, "completed")})));
            index += 1;
        }
        output
    }
}

pub fn sse(
    generation: Generation,
    shell: Shell,
    parser: Option<ToolParser>,
    save: Save,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let Generation { prompt_tokens, events, .. } = generation;
    let state = Arc::new(Mutex::new(Events {
        sequence: 0,
        message_id: format!("msg_{}", crate::api::openai::unique_suffix()),
        text: String::new(),
        open: false,
        end: None,
        failed: None,
    }));
    let opening = {
        let mut s = state.lock().expect("events lock");
        let pending = shell.object("in_progress", Vec::new(), Value::Null);
        vec![
            s.frame(json!({"type": "response.created", "response": pending})),
            s.frame(json!({"type": "response.in_progress", "response": pending})),
        ]
    };
    let mut calls = parser.map(StreamedChoice::new);
    let body = {
        let state = state.clone();
        UnboundedReceiverStream::new(events).flat_map(move |event| {
            let mut out = Vec::new();
            let mut s = state.lock().expect("events lock");
            match event {
                Event::Text { text, .. } => {
                    let ready = match calls.as_mut() {
                        Some(c) => c.push(&text).unwrap_or_default(),
                        None => text,
                    };
                    s.text(&ready, &mut out);
                }
                Event::Done { finish, completion_tokens, .. } => {
                    let parsed = match calls.as_mut() {
                        Some(c) => c.finish(),
                        None => Parsed::default(),
                    };
                    s.text(&parsed.content, &mut out);
                    let output = s.finish(&parsed, &mut out);
                    s.end = Some((output, Some(finish), completion_tokens));
                }
                Event::Failed { message, .. } => s.failed = Some(message),
            }
            stream::iter(out)
        })
    };
    let closing = stream::once(async move {
        let (end, failed) = {
            let mut s = state.lock().expect("events lock");
            (s.end.take(), s.failed.take())
        };
        let data = match (end, failed) {
            (Some((output, finish, tokens)), None) => {
                let response = shell.finished(&output, finish, prompt_tokens, tokens);
                let kind =
                    if response["status"] == "incomplete" { "response.incomplete" } else { "response.completed" };
                if let Err(e) = save.put(&shell, &response, &output).await {
                    tracing::warn!(error = %e.message, "the response could not be stored");
                }
                json!({"type": kind, "response": response})
            }
            (_, failed) => {
                let mut response = shell.object("failed", Vec::new(), Value::Null);
                let message = failed.unwrap_or_else(|| "the generation ended early".into());
                response["error"] = json!({"code": "server_error", "message": message});
                json!({"type": "response.failed", "response": response})
            }
        };
        state.lock().expect("events lock").frame(data)
    });
    let all = stream::iter(opening).chain(body).chain(closing).map(Ok);
    Sse::new(all).keep_alive(KeepAlive::default())
}
