//! The OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`, `/v1/completions`.

#[cfg(test)]
mod fuzz;
mod pipeline;
mod respond;
mod speckit;
mod tools;
mod types;

pub use respond::{unique_suffix, unix_now};
pub use tools::{check_name as check_tool_name, Piece, StreamedChoice, MAX_TOOLS};
pub use types::{CommonOptions, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES, MAX_TOKENS};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use self::respond::Kind;
use self::types::{ChatRequest, CompletionRequest, Content, ContentPart};
use super::error::ApiError;
use super::media::{self, Attachment, MAX_MEDIA_PARTS};
use super::state::{AppState, PIPELINE_MODEL};
use super::workspace;
use crate::engine::{ChatMessage, Prompt, RoleHandle, ToolPrompt, ToolRequest};
use crate::tools::Tools;

pub async fn models(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state.model_ids().into_iter().map(|id| model_object(&state, &id)).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}`: a listed id, or an alias the config maps to one.
pub async fn model(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let ids = state.model_ids();
    if ids.contains(&id) || state.alias(&id).is_some() {
        Ok(Json(model_object(&state, &id)))
    } else {
        Err(ApiError::model_not_found(&id, &ids))
    }
}

fn model_object(state: &AppState, id: &str) -> Value {
    json!({"id": id, "object": "model", "created": state.started(), "owned_by": "quorum"})
}

pub async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    if let Some(alias) = pipeline_workspace(state.model_id(&req.model)) {
        let tools = state.tools_for(workspace::requested(alias, &headers)?.as_deref())?;
        attachments_to_text(&state, &tools, &mut req).await?;
        return pipeline::chat(state, tools, req).await;
    }
    let role = state.role(&req.model)?;
    attachments_to_text(&state, &state.tools_for(None)?, &mut req).await?;
    let messages = req.messages()?;
    let tools = match tools::request(&req)? {
        Some(tools) => Some(plan_tools(&role, messages.clone(), tools).await?),
        None => None,
    };
    respond::run(&role, Kind::Chat, &req.model, Prompt::Chat(messages), &mut req.options, tools).await
}

/// Audio and image parts become text parts (a transcript, the text OCR reads) before
/// anything reads the messages; files named by an image URL come from `tools`' workspace.
async fn attachments_to_text(state: &AppState, tools: &Tools, req: &mut ChatRequest) -> Result<(), ApiError> {
    let mut seen = 0;
    for message in &mut req.messages {
        let Some(Content::Parts(parts)) = &mut message.content else { continue };
        for part in parts.iter_mut() {
            let attachment = match (part.kind.as_str(), &part.input_audio, &part.image_url) {
                ("input_audio", Some(audio), _) => Attachment::Audio { data: &audio.data },
                ("image_url", _, Some(image)) => Attachment::Image { url: image.url() },
                _ => continue,
            };
            seen += 1;
            if seen > MAX_MEDIA_PARTS {
                return Err(ApiError::invalid(
                    format!("at most {MAX_MEDIA_PARTS} audio and image parts are accepted in one request"),
                    Some("messages"),
                ));
            }
            let text = media::to_text(state, tools, attachment).await?;
            *part = ContentPart::text(format!("\n{text}\n"));
        }
    }
    Ok(())
}

/// Renders the tools into the prompt and builds their grammar, off the async runtime.
async fn plan_tools(role: &RoleHandle, messages: Vec<ChatMessage>, tools: ToolRequest) -> Result<ToolPrompt, ApiError> {
    let role = role.clone();
    tokio::task::spawn_blocking(move || role.plan_tools(&messages, &tools))
        .await
        .map_err(|e| ApiError::invalid(format!("the tools could not be prepared: {e}"), Some("tools")))?
        .map_err(ApiError::from)
}

pub async fn completions(
    State(state): State<AppState>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    if pipeline_workspace(state.model_id(&req.model)).is_some() {
        return Err(ApiError::invalid(
            format!("the `{PIPELINE_MODEL}` pipeline answers chats: use /v1/chat/completions"),
            Some("model"),
        ));
    }
    req.check_supported()?;
    let role = state.role(&req.model)?;
    let text = req.prompt()?;
    let prompt = match req.suffix.take() {
        Some(suffix) => Prompt::Text(role.fim_prompt(&text, &suffix, &[])?),
        None => Prompt::Text(text),
    };
    respond::run(&role, Kind::Text, &req.model, prompt, &mut req.options, None).await
}

/// For the pipeline's model ids, the workspace the id names: `Some(None)` for `quorum`,
/// `Some(Some(NAME))` for `quorum@NAME`; `None` for a role's model.
fn pipeline_workspace(model: &str) -> Option<Option<&str>> {
    match model.split_once('@') {
        Some((PIPELINE_MODEL, name)) => Some(Some(name)),
        None if model == PIPELINE_MODEL => Some(None),
        _ => None,
    }
}
