//! Runs a generation and answers in OpenAI's shape, as one JSON body or as SSE chunks.
//! Chat and plain completions differ only in how a choice is written.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{stream, Stream, StreamExt};
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::tools::{self, Piece, StreamedChoice};
use super::types::{CommonOptions, ResponseFormat, Usage};
use crate::api::error::ApiError;
use crate::engine::{
    Event, GenerateRequest, Generation, Parsed, Prompt, RoleHandle, Speculation, ToolParser, ToolPrompt,
};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Chat,
    Text,
}

impl Kind {
    fn id_prefix(self) -> &'static str {
        match self {
            Kind::Chat => "chatcmpl",
            Kind::Text => "cmpl",
        }
    }

    fn object(self, streaming: bool) -> &'static str {
        match (self, streaming) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Text, _) => "text_completion",
        }
    }

    fn choice(self, index: u32, text: &str, finish: Option<&str>) -> Value {
        match self {
            Kind::Chat => json!({
                "index": index, "message": {"role": "assistant", "content": text},
                "finish_reason": finish, "logprobs": null,
            }),
            Kind::Text => json!({"index": index, "text": text, "finish_reason": finish, "logprobs": null}),
        }
    }

    fn delta(self, index: u32, text: Option<&str>, finish: Option<&str>) -> Value {
        match self {
            Kind::Chat => {
                let delta = match text {
                    Some(t) => json!({"content": t}),
                    None => json!({}),
                };
                json!({"index": index, "delta": delta, "finish_reason": finish, "logprobs": null})
            }
            Kind::Text => {
                json!({"index": index, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null})
            }
        }
    }
}

/// Everything a response needs besides the generated text.
struct Reply {
    kind: Kind,
    model: String,
    include_usage: bool,
}

/// Validates the options, starts the generation and answers in `kind`'s shape. With
/// `tools`, the prompt is the one they were rendered into and answers are read for calls.
pub async fn run(
    role: &RoleHandle,
    kind: Kind,
    model: &str,
    prompt: Prompt,
    options: &mut CommonOptions,
    tools: Option<ToolPrompt>,
) -> Result<Response, ApiError> {
    let mut sampling = options.sampling()?;
    let from_schema = options.response_format.as_ref().is_some_and(|f| !matches!(f, ResponseFormat::Text));
    let grammar = options.grammar().await?;
    let (prompt, parser) = match tools {
        Some(t) => {
            if t.grammar.is_some() && grammar.is_some() {
                return Err(ApiError::invalid(
                    "tools cannot be combined with `grammar` or `response_format`; send one of them",
                    Some("tools"),
                ));
            }
            sampling.grammar = t.grammar.or(grammar);
            sampling.grammar_triggers = t.triggers;
            sampling.specials = t.parser.is_some();
            (Prompt::Text(t.prompt), t.parser)
        }
        None => {
            sampling.grammar = grammar;
            (prompt, None)
        }
    };
    let request = GenerateRequest { prompt, n: options.n()?, sampling };
    let reply = Reply { kind, model: model.to_string(), include_usage: options.include_usage() };
    let generation = role.start(request).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if from_schema && e.param == Some("grammar") {
            e.param = Some("response_format");
        }
        e
    })?;
    let id = format!("{}-{}", reply.kind.id_prefix(), unique_suffix());
    let created = unix_now();
    if options.stream {
        return Ok(sse(generation, reply, parser, id, created).into_response());
    }
    let prompt_tokens = generation.prompt_tokens;
    let choices = generation.collect().await?;
    let completion_tokens = choices.iter().map(|c| c.completion_tokens).sum();
    let speculation = choices.iter().fold(Speculation::default(), |a, c| a + c.speculation);
    let choices: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let finish = c.finish.map(|f| f.as_str());
            match &parser {
                Some(p) => tool_choice(i as u32, &p.parse(&c.text), finish),
                None => reply.kind.choice(i as u32, &c.text, finish),
            }
        })
        .collect();
    Ok(Json(json!({
        "id": id, "object": reply.kind.object(false), "created": created, "model": reply.model,
        "choices": choices, "usage": Usage::new(prompt_tokens, completion_tokens).with_speculation(speculation),
    }))
    .into_response())
}

/// A chat choice read for tool calls: `finish_reason: tool_calls` when it made any.
fn tool_choice(index: u32, parsed: &Parsed, finish: Option<&str>) -> Value {
    if parsed.calls.is_empty() {
        return Kind::Chat.choice(index, &parsed.content, finish);
    }
    let content = (!parsed.content.is_empty()).then_some(&parsed.content);
    json!({
        "index": index,
        "message": {"role": "assistant", "content": content, "tool_calls": tools::calls_json(parsed)},
        "finish_reason": "tool_calls", "logprobs": null,
    })
}

/// SSE chunks, then a usage chunk when asked for, then `[DONE]`. The stream owns the
/// generation: when the client goes away the stream is dropped and so is the work.
fn sse(
    generation: Generation,
    reply: Reply,
    parser: Option<ToolParser>,
    id: String,
    created: u64,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let Generation { prompt_tokens, n, events } = generation;
    let kind = reply.kind;
    let chunk = {
        let (id, model) = (id.clone(), reply.model.clone());
        move |choices: Vec<Value>, usage: Option<Usage>| -> SseEvent {
            let mut body = json!({
                "id": id, "object": kind.object(true), "created": created, "model": model, "choices": choices,
            });
            if let Some(usage) = usage {
                body["usage"] = json!(usage);
            }
            SseEvent::default().data(body.to_string())
        }
    };
    // Completion tokens and speculation over the choices, for the usage chunk.
    let totals = Arc::new(Mutex::new((0u32, Speculation::default())));
    let opening: Vec<SseEvent> = match kind {
        // Chat clients expect the assistant role first.
        Kind::Chat => (0..n)
            .map(|i| chunk(vec![json!({"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": null, "logprobs": null})], None))
            .collect(),
        Kind::Text => Vec::new(),
    };
    let mut calls: Vec<Option<StreamedChoice>> = (0..n).map(|_| parser.clone().map(StreamedChoice::new)).collect();
    // Per choice: whether it made a call (its finish reason is then `tool_calls`).
    let mut called = vec![false; n as usize];
    let body = {
        let chunk = chunk.clone();
        let totals = totals.clone();
        // One chunk per `delta.tool_calls` entry, as OpenAI sends them: some clients read
        // only the first entry of a chunk.
        let send = {
            let chunk = chunk.clone();
            move |choice: u32, pieces: Vec<Piece>, called: &mut bool| -> Vec<SseEvent> {
                let send_one = |p: Piece| match tools::call_delta(&p) {
                    Some(entry) => {
                        let delta = json!({"tool_calls": [entry]});
                        chunk(
                            vec![json!({"index": choice, "delta": delta, "finish_reason": null, "logprobs": null})],
                            None,
                        )
                    }
                    None => match p {
                        Piece::Text(t) => chunk(vec![kind.delta(choice, Some(&t), None)], None),
                        _ => unreachable!("a call piece has a delta"),
                    },
                };
                *called |= pieces.iter().any(|p| matches!(p, Piece::Call { .. }));
                pieces.into_iter().map(send_one).collect()
            }
        };
        UnboundedReceiverStream::new(events).flat_map(move |event| {
            let out: Vec<SseEvent> = match event {
                Event::Text { choice, text } => match calls.get_mut(choice as usize).and_then(Option::as_mut) {
                    Some(c) => send(choice, c.pieces(&text), &mut called[choice as usize]),
                    None => vec![chunk(vec![kind.delta(choice, Some(&text), None)], None)],
                },
                Event::Done { choice, finish, completion_tokens: tokens, speculation } => {
                    {
                        let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                        *t = (t.0 + tokens, t.1 + speculation);
                    }
                    let mut out = Vec::new();
                    if let Some(c) = calls.get_mut(choice as usize).and_then(Option::as_mut) {
                        out = send(choice, c.finish_pieces(), &mut called[choice as usize]);
                    }
                    let finish = if called[choice as usize] { "tool_calls" } else { finish.as_str() };
                    out.push(chunk(vec![kind.delta(choice, None, Some(finish))], None));
                    out
                }
                Event::Failed { message, recovering } => {
                    let err = if recovering {
                        crate::engine::EngineError::Recovering(message)
                    } else {
                        crate::engine::EngineError::Decode(message)
                    };
                    vec![SseEvent::default().data(ApiError::from(err).body().to_string())]
                }
            };
            stream::iter(out)
        })
    };
    let closing = stream::once(async move {
        let mut tail = Vec::new();
        if reply.include_usage {
            let (tokens, speculation) = *totals.lock().unwrap_or_else(|p| p.into_inner());
            let usage = Usage::new(prompt_tokens, tokens).with_speculation(speculation);
            tail.push(chunk(Vec::new(), Some(usage)));
        }
        tail.push(SseEvent::default().data("[DONE]"));
        stream::iter(tail)
    })
    .flatten();
    let all = stream::iter(opening).chain(body).chain(closing).map(Ok);
    Sse::new(all).keep_alive(KeepAlive::default())
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:08x}{:04x}", nanos, COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff)
}
