//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), as Claude Code
//! and the `anthropic` SDKs speak it, served by the same roles and tool calling as the
//! OpenAI routes. Errors come in Anthropic's shape.

mod request;
mod stream;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use self::request::MessagesRequest;
use super::error::ApiError;
use super::media::{self, Attachment, MAX_MEDIA_PARTS};
use super::openai::unique_suffix;
use super::state::AppState;
use crate::engine::{
    Completion, FinishReason, GenerateRequest, Parsed, Prompt, RoleHandle, ToolChoice, ToolPrompt, ToolRequest,
};

/// An [`ApiError`] answered as `{"type": "error", "error": {"type", "message"}}`.
pub struct AnthropicError(ApiError);

impl<E: Into<ApiError>> From<E> for AnthropicError {
    fn from(e: E) -> AnthropicError {
        AnthropicError(e.into())
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let (status, kind) = error_type(&self.0);
        (status, Json(error_body(kind, &self.0.message))).into_response()
    }
}

fn error_type(e: &ApiError) -> (StatusCode, &'static str) {
    match e.status.as_u16() {
        400 | 422 => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        401 => (e.status, "authentication_error"),
        403 => (e.status, "permission_error"),
        404 => (e.status, "not_found_error"),
        413 => (e.status, "request_too_large"),
        // A full queue is Anthropic's "overloaded", which clients retry.
        429 | 503 => (StatusCode::from_u16(529).unwrap_or(e.status), "overloaded_error"),
        _ => (e.status, "api_error"),
    }
}

pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

pub async fn messages(
    State(state): State<AppState>,
    body: Result<Json<MessagesRequest>, JsonRejection>,
) -> Result<Response, AnthropicError> {
    let Json(mut req) = body?;
    let role = state.role(&req.model)?;
    images_to_text(&state, &mut req).await?;
    let sampling = req.sampling()?;
    let prompt = prompt(&role, &req).await?;
    let stop = sampling.stop.clone();
    let mut sampling = sampling;
    sampling.grammar = prompt.grammar.clone();
    sampling.grammar_triggers = prompt.triggers.clone();
    sampling.specials = prompt.parser.is_some();
    let generation =
        role.start(GenerateRequest { prompt: Prompt::Text(prompt.prompt.clone()), sampling, n: 1 }).await?;
    let reply = Reply { id: format!("msg_{}", unique_suffix()), model: req.model.clone(), stop };
    if req.stream {
        return Ok(stream::sse(generation, reply, prompt.parser).into_response());
    }
    let input_tokens = generation.prompt_tokens;
    let done = generation.collect().await?.remove(0);
    let parsed = match &prompt.parser {
        Some(p) => p.parse(&done.text),
        None => Parsed { content: done.text.clone(), calls: Vec::new() },
    };
    Ok(Json(reply.message(&parsed, &done, input_tokens)).into_response())
}

/// Image blocks of user turns become text blocks (what OCR or the vision model reads),
/// as image parts of OpenAI chats do.
async fn images_to_text(state: &AppState, req: &mut MessagesRequest) -> Result<(), ApiError> {
    let tools = state.tools_for(None)?;
    let mut seen = 0;
    for message in req.messages.iter_mut().filter(|m| m.role == "user") {
        let request::Content::Blocks(blocks) = &mut message.content else { continue };
        for block in blocks.iter_mut() {
            let request::Block::Image { source } = block else { continue };
            let url = source
                .as_ref()
                .map(|s| s.url())
                .ok_or_else(|| ApiError::invalid("messages: an image block needs a `source`", Some("messages")))?;
            seen += 1;
            if seen > MAX_MEDIA_PARTS {
                let message = format!("messages: at most {MAX_MEDIA_PARTS} images are accepted in one request");
                return Err(ApiError::invalid(message, Some("messages")));
            }
            let text = media::to_text(state, &tools, Attachment::Image { url: &url }).await?;
            *block = request::Block::Text { text };
        }
    }
    Ok(())
}

pub async fn count_tokens(
    State(state): State<AppState>,
    body: Result<Json<MessagesRequest>, JsonRejection>,
) -> Result<Json<Value>, AnthropicError> {
    let Json(mut req) = body?;
    let role = state.role(&req.model)?;
    images_to_text(&state, &mut req).await?;
    let prompt = prompt(&role, &req).await?;
    let counted = {
        let role = role.clone();
        tokio::task::spawn_blocking(move || role.count_tokens(&prompt.prompt))
            .await
            .map_err(|e| ApiError::invalid(format!("the prompt could not be counted: {e}"), None))?
    };
    Ok(Json(json!({"input_tokens": counted})))
}

/// The rendered prompt (with the tools, when the request has any), off the runtime.
async fn prompt(role: &RoleHandle, req: &MessagesRequest) -> Result<ToolPrompt, AnthropicError> {
    let conversation = req.conversation()?;
    let tools = conversation.tools.unwrap_or(ToolRequest { choice: ToolChoice::None, ..ToolRequest::default() });
    let role = role.clone();
    let (messages, prefill) = (conversation.messages, conversation.prefill);
    let mut prompt = tokio::task::spawn_blocking(move || role.plan_tools(&messages, &tools))
        .await
        .map_err(|e| ApiError::invalid(format!("the prompt could not be prepared: {e}"), Some("messages")))??;
    prompt.prompt.push_str(&prefill);
    Ok(prompt)
}

/// What a message needs besides the model's output.
pub struct Reply {
    id: String,
    model: String,
    stop: Vec<String>,
}

impl Reply {
    fn message(&self, parsed: &Parsed, done: &Completion, input_tokens: u32) -> Value {
        let mut content = Vec::new();
        if !parsed.content.is_empty() {
            content.push(json!({"type": "text", "text": parsed.content}));
        }
        for call in &parsed.calls {
            content.push(
                json!({"type": "tool_use", "id": tool_use_id(), "name": call.name, "input": input(&call.arguments)}),
            );
        }
        let (stop_reason, stop_sequence) = self.stop_reason(done.finish, !parsed.calls.is_empty());
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence,
            "usage": {"input_tokens": input_tokens, "output_tokens": done.completion_tokens},
        })
    }

    fn stop_reason(&self, finish: Option<FinishReason>, called: bool) -> (&'static str, Option<String>) {
        match finish {
            _ if called => ("tool_use", None),
            Some(FinishReason::Length) => ("max_tokens", None),
            Some(FinishReason::StopString(i)) => ("stop_sequence", self.stop.get(i).cloned()),
            _ => ("end_turn", None),
        }
    }
}

fn tool_use_id() -> String {
    format!("toolu_{}", unique_suffix())
}

/// A call's arguments as the object Anthropic clients expect (`{}` for what is not one).
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}
