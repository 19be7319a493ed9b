//! `POST /infill` in llama.cpp's shape (what llama.vim and llama.vscode call): the model's
//! fill-in-the-middle prompt from `input_prefix`, `input_suffix` and `input_extra` (other
//! files for context); the answer as llama.cpp's `/completion` writes it.

use std::convert::Infallible;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::error::ApiError;
use super::openai::CommonOptions;
use super::state::AppState;
use crate::engine::{Event, FinishReason, GenerateRequest, Prompt};
use crate::models::Role;

/// Files of context one request may send.
const MAX_EXTRA: usize = 64;

#[derive(Debug, Deserialize)]
pub struct InfillRequest {
    /// A role (default: the coder).
    pub model: Option<String>,
    #[serde(default)]
    pub input_prefix: String,
    #[serde(default)]
    pub input_suffix: String,
    #[serde(default)]
    pub input_extra: Vec<ExtraFile>,
    /// Text that continues the prefix (llama.cpp adds it after `input_prefix`).
    #[serde(default)]
    pub prompt: String,
    pub n_predict: Option<i64>,
    #[serde(flatten)]
    pub options: CommonOptions,
}

#[derive(Debug, Deserialize)]
pub struct ExtraFile {
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub text: String,
}

pub async fn infill(
    State(state): State<AppState>,
    body: Result<Json<InfillRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut req) = body?;
    let model = req.model.clone().unwrap_or_else(|| Role::Coder.to_string());
    let role = state.role(&model)?;
    if req.input_extra.len() > MAX_EXTRA {
        return Err(ApiError::invalid(
            format!("at most {MAX_EXTRA} input_extra files are allowed"),
            Some("input_extra"),
        ));
    }
    if let Some(n) = req.n_predict.filter(|&n| n > 0) {
        req.options.max_tokens.get_or_insert(n.min(u32::MAX as i64) as u32);
    }
    let extra: Vec<(String, String)> = req.input_extra.iter().map(|f| (f.filename.clone(), f.text.clone())).collect();
    let prefix = format!("{}{}", req.input_prefix, req.prompt);
    let prompt = role.fim_prompt(&prefix, &req.input_suffix, &extra)?;
    let sampling = req.options.sampling()?;
    let generation = role.start(GenerateRequest { prompt: Prompt::Text(prompt), sampling, n: 1 }).await?;
    let evaluated = generation.prompt_tokens;
    if !req.options.stream {
        let done = generation.collect().await?.remove(0);
        return Ok(Json(last(&model, done.text, done.finish, done.completion_tokens, evaluated)).into_response());
    }
    let events = UnboundedReceiverStream::new(generation.events).map(move |event| {
        let body = match event {
            Event::Text { text, .. } => json!({"content": text, "stop": false}),
            Event::Done { finish, completion_tokens, .. } => {
                last(&model, String::new(), Some(finish), completion_tokens, evaluated)
            }
            Event::Failed { message, .. } => {
                json!({"error": {"code": 500, "message": message, "type": "server_error"}})
            }
        };
        Ok::<_, Infallible>(SseEvent::default().data(body.to_string()))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// llama.cpp's closing object: the text (all of it, when not streamed) and why it stopped.
fn last(model: &str, content: String, finish: Option<FinishReason>, predicted: u32, evaluated: u32) -> Value {
    let stop_type = match finish {
        Some(FinishReason::Length) => "limit",
        _ => "eos",
    };
    json!({
        "content": content, "model": model, "stop": true, "stop_type": stop_type,
        "tokens_predicted": predicted, "tokens_evaluated": evaluated,
    })
}
