//! The Responses API (`POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`), as the
//! OpenAI Agents SDK and Codex-style clients speak it: text and function-call turns, turns
//! chained by `previous_response_id` from the state store (kept [`TTL`]), streamed as
//! Responses events.

mod input;
mod stream;

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use self::input::ResponsesRequest;
use super::error::ApiError;
use super::openai::{unique_suffix, unix_now};
use super::state::AppState;
use crate::engine::{
    ChatMessage, FinishReason, GenerateRequest, Parsed, Prompt, ToolCall, ToolChoice, ToolPrompt, ToolRequest,
};
use crate::state::{SetOptions, StateStore};

/// How long a stored response can be read or continued.
pub const TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn key(id: &str) -> String {
    format!("quorum:response:{id}")
}

pub async fn create(
    State(state): State<AppState>,
    body: Result<Json<ResponsesRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let role = state.role(&req.model)?;
    let mut history = match &req.previous_response_id {
        Some(id) => previous(state.tasks().store().as_ref(), id).await?,
        None => Vec::new(),
    };
    // Instructions belong to this request only: a stored chain keeps none.
    history.retain(|m| m.role != "system");
    let turn = req.messages()?;
    let mut messages = history;
    messages.extend(turn.iter().cloned());
    let mut sampling = req.sampling()?;
    let tools = req.tools()?.unwrap_or(ToolRequest { choice: ToolChoice::None, ..ToolRequest::default() });
    let schema = req.schema();
    let prompt = {
        let (role, messages) = (role.clone(), messages.clone());
        tokio::task::spawn_blocking(move || -> Result<ToolPrompt, ApiError> {
            let mut prompt = role.plan_tools(&messages, &tools)?;
            if let Some(schema) = schema {
                if prompt.grammar.is_some() {
                    return Err(ApiError::invalid("text.format cannot be combined with tools", Some("text")));
                }
                prompt.grammar = Some(crate::engine::json_schema_grammar(&schema.to_string())?);
            }
            Ok(prompt)
        })
        .await
        .map_err(|e| ApiError::invalid(format!("the request could not be prepared: {e}"), None))??
    };
    sampling.grammar = prompt.grammar.clone();
    sampling.grammar_triggers = prompt.triggers.clone();
    sampling.specials = prompt.parser.is_some();
    let generation =
        role.start(GenerateRequest { prompt: Prompt::Text(prompt.prompt.clone()), sampling, n: 1 }).await?;
    let shell = Shell {
        id: format!("resp_{}", unique_suffix()),
        created_at: unix_now(),
        model: req.model.clone(),
        instructions: req.instructions.clone(),
        previous: req.previous_response_id.clone(),
        store: req.store.unwrap_or(true),
    };
    let save = Save {
        store: state.tasks().store().clone(),
        messages: messages.iter().filter(|m| m.role != "system").cloned().collect(),
    };
    if req.stream {
        return Ok(stream::sse(generation, shell, prompt.parser, save).into_response());
    }
    let input_tokens = generation.prompt_tokens;
    let done = generation.collect().await?.remove(0);
    let parsed = match &prompt.parser {
        Some(p) => p.parse(&done.text),
        None => Parsed { content: done.text.clone(), calls: Vec::new() },
    };
    let output = Output::new(&parsed);
    let response = shell.finished(&output, done.finish, input_tokens, done.completion_tokens);
    save.put(&shell, &response, &output).await?;
    Ok(Json(response).into_response())
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let stored = load(state.tasks().store().as_ref(), &id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(stored["response"].clone()))
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if !state.tasks().store().del(&key(&id)).await? {
        return Err(not_found(&id));
    }
    Ok(Json(json!({"id": id, "object": "response", "deleted": true})))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Response with id '{id}' not found."), "response_not_found")
}

async fn load(store: &dyn StateStore, id: &str) -> Result<Option<Value>, ApiError> {
    let Some(bytes) = store.get(&key(id)).await? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("the stored response {id} is unreadable: {e}"), None))
}

/// The turns of a stored chain, its outputs included.
async fn previous(store: &dyn StateStore, id: &str) -> Result<Vec<ChatMessage>, ApiError> {
    let stored = load(store, id).await?.ok_or_else(|| {
        let mut e =
            ApiError::invalid(format!("Previous response with id '{id}' not found."), Some("previous_response_id"));
        e.code = Some("previous_response_not_found");
        e
    })?;
    Ok(input::from_json(&stored["messages"]))
}

/// The response's fields that do not depend on the output.
pub struct Shell {
    id: String,
    created_at: u64,
    model: String,
    instructions: Option<String>,
    previous: Option<String>,
    store: bool,
}

impl Shell {
    fn object(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "error": null, "incomplete_details": null, "instructions": self.instructions, "model": self.model,
            "output": output, "parallel_tool_calls": true, "previous_response_id": self.previous,
            "store": self.store, "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
            "truncation": "disabled", "metadata": {}, "usage": usage,
        })
    }

    fn finished(&self, output: &Output, finish: Option<FinishReason>, input_tokens: u32, output_tokens: u32) -> Value {
        let cut = finish == Some(FinishReason::Length) && output.calls.is_empty();
        let mut response = self.object(
            if cut { "incomplete" } else { "completed" },
            output.items(cut),
            usage(input_tokens, output_tokens),
        );
        if cut {
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        response
    }
}

fn usage(input_tokens: u32, output_tokens: u32) -> Value {
    json!({
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    })
}

/// A turn's output: its text (one message item) and its calls (function_call items).
pub struct Output {
    message_id: String,
    text: String,
    calls: Vec<(String, ToolCall)>,
}

impl Output {
    fn new(parsed: &Parsed) -> Output {
        let calls = parsed
            .calls
            .iter()
            .map(|c| {
                let call = ToolCall {
                    id: format!("call_{}", unique_suffix()),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                };
                (format!("fc_{}", unique_suffix()), call)
            })
            .collect();
        Output { message_id: format!("msg_{}", unique_suffix()), text: parsed.content.clone(), calls }
    }

    fn message_item(&self, status: &str) -> Value {
        let part = json!({"type": "output_text", "text": self.text, "annotations": [], "logprobs": []});
        json!({"id": self.message_id, "type": "message", "role": "assistant", "status": status, "content": [part]})
    }

    fn call_item(item_id: &str, call: &ToolCall, status: &str) -> Value {
        json!({"id": item_id, "type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments, "status": status})
    }

    fn items(&self, cut: bool) -> Vec<Value> {
        let mut items = Vec::new();
        if !self.text.is_empty() || self.calls.is_empty() {
            items.push(self.message_item(if cut { "incomplete" } else { "completed" }));
        }
        items.extend(self.calls.iter().map(|(id, c)| Output::call_item(id, c, "completed")));
        items
    }

    /// The turn as the assistant message a later turn continues from.
    fn as_message(&self) -> ChatMessage {
        ChatMessage {
            role: "assistant".into(),
            content: self.text.clone(),
            tool_calls: self.calls.iter().map(|(_, c)| c.clone()).collect(),
            ..ChatMessage::default()
        }
    }
}

/// Where a finished response goes, with the turns that led to it.
pub struct Save {
    store: std::sync::Arc<dyn StateStore>,
    messages: Vec<ChatMessage>,
}

impl Save {
    async fn put(self, shell: &Shell, response: &Value, output: &Output) -> Result<(), ApiError> {
        if !shell.store {
            return Ok(());
        }
        let mut messages = self.messages;
        messages.push(output.as_message());
        let record = json!({"response": response, "messages": input::to_json(&messages)});
        let options = SetOptions { ttl: Some(TTL), ..SetOptions::default() };
        self.store.set(&key(&shell.id), record.to_string().as_bytes(), options).await?;
        Ok(())
    }
}
