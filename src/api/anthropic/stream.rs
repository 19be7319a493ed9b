//! The Messages streaming events: `message_start`, then each content block (`start`,
//! deltas, `stop`), `message_delta` with the stop reason and the output tokens, and
//! `message_stop`; every frame named by its `event:` line, as the SDKs require.

use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{stream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{tool_use_id, Reply};
use crate::api::openai::{Piece, StreamedChoice};
use crate::engine::{Event, Generation, ToolParser};

fn frame(data: Value) -> SseEvent {
    let name = data["type"].as_str().unwrap_or("message").to_string();
    SseEvent::default().event(name).data(data.to_string())
}

/// Open blocks and where the next goes.
struct Blocks {
    next: usize,
    text_open: bool,
    tool_open: bool,
}

impl Blocks {
    fn text(&mut self, text: &str, out: &mut Vec<SseEvent>) {
        if text.is_empty() {
            return;
        }
        self.close(out);
        if !self.text_open {
            out.push(frame(json!({"type": "content_block_start", "index": self.next, "content_block": {"type": "text", "text": ""}})));
            self.text_open = true;
        }
        out.push(frame(
            json!({"type": "content_block_delta", "index": self.next, "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    /// Ends the open block, text or tool use.
    fn close(&mut self, out: &mut Vec<SseEvent>) {
        if self.text_open || self.tool_open {
            out.push(frame(json!({"type": "content_block_stop", "index": self.next})));
            self.text_open = false;
            self.tool_open = false;
            self.next += 1;
        }
    }

    /// A `tool_use` block per call, its input streamed as `input_json_delta` chunks.
    fn piece(&mut self, piece: Piece, out: &mut Vec<SseEvent>) {
        match piece {
            Piece::Text(t) => self.text(&t, out),
            Piece::Call { name, .. } => {
                self.close(out);
                let start = json!({"type": "tool_use", "id": tool_use_id(), "name": name, "input": {}});
                out.push(frame(json!({"type": "content_block_start", "index": self.next, "content_block": start})));
                self.tool_open = true;
            }
            Piece::Arguments { chunk, .. } => out.push(frame(json!({
                "type": "content_block_delta", "index": self.next,
                "delta": {"type": "input_json_delta", "partial_json": chunk},
            }))),
        }
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
    let mut blocks = Blocks { next: 0, text_open: false, tool_open: false };
    let mut called = false;
    let body = UnboundedReceiverStream::new(events).flat_map(move |event| {
        let mut out = Vec::new();
        match event {
            Event::Text { text, .. } => match calls.as_mut() {
                Some(c) => {
                    for piece in c.pieces(&text) {
                        called |= matches!(piece, Piece::Call { .. });
                        blocks.piece(piece, &mut out);
                    }
                }
                None => blocks.text(&text, &mut out),
            },
            Event::Done { finish, completion_tokens, .. } => {
                if let Some(c) = calls.as_mut() {
                    for piece in c.finish_pieces() {
                        called |= matches!(piece, Piece::Call { .. });
                        blocks.piece(piece, &mut out);
                    }
                }
                blocks.close(&mut out);
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
