//! The Messages streaming events: `message_start`, then each content block (`start`,
//! deltas, `stop`), `message_delta` with the stop reason and the output tokens, and
//! `message_stop`; every frame named by its `event:` line, as the SDKs require.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{stream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{input, tool_use_id, Reply};
use crate::api::openai::StreamedChoice;
use crate::engine::{Event, Generation, ToolParser};

fn frame(data: Value) -> SseEvent {
    let name = data["type"].as_str().unwrap_or("message").to_string();
    SseEvent::default().event(name).data(data.to_string())
}

/// Open blocks and where the next goes.
struct Blocks {
    next: usize,
    text_open: bool,
}

impl Blocks {
    fn text(&mut self, text: &str, out: &mut Vec<SseEvent>) {
        if text.is_empty() {
            return;
        }
        if !self.text_open {
            out.push(frame(json!({"type": "content_block_start", "index": self.next, "content_block": {"type": "text", "text": ""}})));
            self.text_open = true;
        }
        out.push(frame(
            json!({"type": "content_block_delta", "index": self.next, "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    fn close_text(&mut self, out: &mut Vec<SseEvent>) {
        if self.text_open {
            out.push(frame(json!({"type": "content_block_stop", "index": self.next})));
            self.text_open = false;
            self.next += 1;
        }
    }

    fn tool_use(&mut self, name: &str, arguments: &str, out: &mut Vec<SseEvent>) {
        self.close_text(out);
        let index = self.next;
        let start = json!({"type": "tool_use", "id": tool_use_id(), "name": name, "input": {}});
        out.push(frame(json!({"type": "content_block_start", "index": index, "content_block": start})));
        let whole = input(arguments).to_string();
        out.push(frame(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": whole}})));
        out.push(frame(json!({"type": "content_block_stop", "index": index})));
        self.next += 1;
    }
}

pub fn sse(
    generation: Generation,
    reply: Reply,
    parser: Option<ToolParser>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let Generation { prompt_tokens, events, .. } = generation;
    let start = json!({
        "type": "message_start",
        "message": {
            "id": reply.id, "type": "message", "role": "assistant", "model": reply.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": 0},
        },
    });
    let opening = vec![frame(start), frame(json!({"type": "ping"}))];
    let mut calls = parser.map(StreamedChoice::new);
    let mut blocks = Blocks { next: 0, text_open: false };
    let body = UnboundedReceiverStream::new(events).flat_map(move |event| {
        let mut out = Vec::new();
        match event {
            Event::Text { text, .. } => match calls.as_mut() {
                Some(c) => {
                    if let Some(t) = c.push(&text) {
                        blocks.text(&t, &mut out);
                    }
                }
                None => blocks.text(&text, &mut out),
            },
            Event::Done { finish, completion_tokens, .. } => {
                let mut called = false;
                if let Some(c) = calls.as_mut() {
                    let parsed = c.finish();
                    blocks.text(&parsed.content, &mut out);
                    for call in &parsed.calls {
                        blocks.tool_use(&call.name, &call.arguments, &mut out);
                    }
                    called = !parsed.calls.is_empty();
                }
                blocks.close_text(&mut out);
                let (stop_reason, stop_sequence) = reply.stop_reason(Some(finish), called);
                out.push(frame(json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": completion_tokens},
                })));
                out.push(frame(json!({"type": "message_stop"})));
            }
            Event::Failed { message, recovering } => {
                let kind = if recovering { "overloaded_error" } else { "api_error" };
                out.push(SseEvent::default().event("error").data(super::error_body(kind, &message).to_string()));
            }
        }
        stream::iter(out)
    });
    let all = stream::iter(opening).chain(body).map(Ok);
    Sse::new(all).keep_alive(KeepAlive::default())
}
