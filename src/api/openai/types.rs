//! OpenAI request and response shapes (the subset quorum serves), and their validation
//! into engine requests.

use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::engine::{check_grammar, json_schema_grammar, ChatMessage, GrammarLimits, SamplingParams, Speculation};

/// Stop sequences a request may give, and their length.
pub const MAX_STOP: usize = 16;
pub const MAX_STOP_BYTES: usize = 256;
/// Tokens a request may ask for; the context of the role bounds it further.
pub const MAX_TOKENS: u32 = 32_768;
/// Messages of one chat.
pub const MAX_MESSAGES: usize = 1024;
/// Entries of `logit_bias` (OpenAI's own limit).
pub const MAX_LOGIT_BIAS: usize = 300;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// Options shared by chat and plain completions.
#[derive(Debug, Deserialize)]
pub struct CommonOptions {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub n: Option<u32>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// llama.cpp server extension: generate past end-of-generation (benchmarks).
    #[serde(default)]
    pub ignore_eos: bool,
    /// llama.cpp server extension: a GBNF grammar the output must follow.
    pub grammar: Option<String>,
    /// `{"type": "json_object"}` or `{"type": "json_schema", "json_schema": {"schema": ...}}`.
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub presence_penalty: f32,
    #[serde(default)]
    pub frequency_penalty: f32,
    /// llama.cpp server extensions.
    pub repeat_penalty: Option<f32>,
    pub top_k: Option<u32>,
    /// Token id (as a string) to a bias between -100 and 100.
    pub logit_bias: Option<std::collections::BTreeMap<String, f32>>,
    /// Refused when asked for: quorum does not return log probabilities.
    pub logprobs: Option<serde_json::Value>,
    pub top_logprobs: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
}

impl CommonOptions {
    pub fn n(&self) -> Result<u32, ApiError> {
        match self.n {
            Some(0) => Err(ApiError::invalid("n must be at least 1", Some("n"))),
            Some(n) if n > 256 => {
                Err(ApiError::invalid(format!("n is {n}; a model runs at most 256 sequences"), Some("n")))
            }
            n => Ok(n.unwrap_or(1)),
        }
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }

    /// Constrained decoding: an explicit grammar (checked here, so that the error names
    /// `grammar`), or one derived from a JSON schema, converted off the async runtime.
    pub async fn grammar(&mut self) -> Result<Option<String>, ApiError> {
        let schema = match self.response_format.take() {
            None | Some(ResponseFormat::Text) => {
                let grammar = self.grammar.take();
                if let Some(gbnf) = &grammar {
                    check_grammar(gbnf, &GrammarLimits::written())
                        .map_err(|e| ApiError::invalid(e.to_string(), Some("grammar")))?;
                }
                return Ok(grammar);
            }
            Some(ResponseFormat::JsonObject) => serde_json::json!({"type": "object"}),
            Some(ResponseFormat::JsonSchema { json_schema }) => json_schema.schema.unwrap_or(serde_json::json!({})),
        };
        let converted =
            tokio::task::spawn_blocking(move || json_schema_grammar(&schema.to_string())).await.map_err(|e| {
                ApiError::invalid(format!("the JSON schema could not be converted: {e}"), Some("response_format"))
            })?;
        converted.map(Some).map_err(|e| ApiError::invalid(e.to_string(), Some("response_format")))
    }

    pub fn sampling(&mut self) -> Result<SamplingParams, ApiError> {
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ApiError::invalid("temperature must be between 0 and 2", Some("temperature")));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(ApiError::invalid("top_p must be greater than 0 and at most 1", Some("top_p")));
            }
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        if max_tokens == Some(0) {
            return Err(ApiError::invalid("max_tokens must be at least 1", Some("max_tokens")));
        }
        let stop = self.stop.take().map(OneOrMany::into_vec).unwrap_or_default();
        if stop.len() > MAX_STOP {
            return Err(ApiError::invalid(format!("at most {MAX_STOP} stop sequences are allowed"), Some("stop")));
        }
        if let Some(long) = stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
            return Err(ApiError::invalid(
                format!("a stop sequence has {} bytes; at most {MAX_STOP_BYTES} are allowed", long.len()),
                Some("stop"),
            ));
        }
        for (name, value) in
            [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)]
        {
            if !(-2.0..=2.0).contains(&value) {
                return Err(ApiError::invalid(format!("{name} must be between -2 and 2"), Some(name)));
            }
        }
        if let Some(r) = self.repeat_penalty.filter(|r| !(0.0..=10.0).contains(r)) {
            return Err(ApiError::invalid(
                format!("repeat_penalty is {r}; it must be between 0 and 10"),
                Some("repeat_penalty"),
            ));
        }
        let asks_logprobs = match &self.logprobs {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
            Some(serde_json::Value::Number(n)) => n.as_u64() != Some(0),
            Some(_) => true,
        };
        if asks_logprobs || self.top_logprobs.is_some_and(|n| n > 0) {
            return Err(ApiError::invalid(
                "logprobs and top_logprobs are not supported by quorum; leave them out",
                Some(if asks_logprobs { "logprobs" } else { "top_logprobs" }),
            ));
        }
        let logit_bias = self.logit_bias()?;
        if let Some(n) = max_tokens.filter(|&n| n > MAX_TOKENS) {
            return Err(ApiError::invalid(
                format!("max_tokens is {n}; at most {MAX_TOKENS} are allowed"),
                Some("max_tokens"),
            ));
        }
        Ok(SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens,
            // OpenAI seeds are 64-bit; llama.cpp's are 32-bit.
            seed: self.seed.map(|s| s as u32),
            stop,
            ignore_eos: self.ignore_eos,
            top_k: self.top_k,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            repeat_penalty: self.repeat_penalty.unwrap_or(0.0),
            logit_bias,
            ..SamplingParams::default()
        })
    }

    /// `{"token id": bias}`: ids are checked against the vocabulary by the engine.
    fn logit_bias(&self) -> Result<Vec<(i32, f32)>, ApiError> {
        let Some(map) = &self.logit_bias else { return Ok(Vec::new()) };
        if map.len() > MAX_LOGIT_BIAS {
            return Err(ApiError::invalid(
                format!("logit_bias has {} entries; at most {MAX_LOGIT_BIAS} are allowed", map.len()),
                Some("logit_bias"),
            ));
        }
        map.iter()
            .map(|(token, &bias)| {
                let id: i32 = token.parse().map_err(|_| {
                    ApiError::invalid(
                        format!("logit_bias keys are token ids; `{token}` is not one"),
                        Some("logit_bias"),
                    )
                })?;
                if !(-100.0..=100.0).contains(&bias) {
                    return Err(ApiError::invalid(
                        format!("logit_bias for {id} is {bias}; biases are between -100 and 100"),
                        Some("logit_bias"),
                    ));
                }
                Ok((id, bias))
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<RequestMessage>,
    /// quorum's extension for `model: "quorum"`: pipeline options, and `detach`.
    #[serde(default, rename = "options")]
    pub quorum_options: Option<serde_json::Value>,
    #[serde(default)]
    pub tools: Vec<super::tools::RequestTool>,
    pub tool_choice: Option<serde_json::Value>,
    pub parallel_tool_calls: Option<bool>,
    /// quorum's extension: `false` leaves tool calls unconstrained (to measure the grammar).
    pub tool_grammar: Option<bool>,
    #[serde(flatten)]
    pub options: CommonOptions,
}

#[derive(Debug, Deserialize)]
pub struct RequestMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub tool_calls: Option<Vec<super::tools::RequestToolCall>>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub input_audio: Option<InputAudio>,
    #[serde(default)]
    pub image_url: Option<ImageUrl>,
}

impl ContentPart {
    pub fn text(text: String) -> ContentPart {
        ContentPart { kind: "text".into(), text: Some(text), input_audio: None, image_url: None }
    }
}

/// `{"data": BASE64, "format": "wav"}`; the format is read from the bytes themselves.
#[derive(Debug, Deserialize)]
pub struct InputAudio {
    pub data: String,
}

/// `{"url": ...}`, or the bare URL older clients send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ImageUrl {
    Object { url: String },
    Bare(String),
}

impl ImageUrl {
    pub fn url(&self) -> &str {
        match self {
            ImageUrl::Object { url } | ImageUrl::Bare(url) => url,
        }
    }
}

impl ChatRequest {
    /// The messages as text; audio and image parts must have become text first
    /// (`attachments_to_text`).
    pub fn messages(&self) -> Result<Vec<ChatMessage>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid("messages must not be empty", Some("messages")));
        }
        if self.messages.len() > MAX_MESSAGES {
            return Err(ApiError::invalid(format!("at most {MAX_MESSAGES} messages are allowed"), Some("messages")));
        }
        self.messages
            .iter()
            .map(|m| {
                let content = match &m.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t.clone(),
                    Some(Content::Parts(parts)) => {
                        let mut text = String::new();
                        for part in parts {
                            match (part.kind.as_str(), &part.text) {
                                ("text", Some(t)) => text.push_str(t),
                                (kind, _) => {
                                    return Err(ApiError::invalid(
                                        format!("content parts of type `{kind}` are not supported; send text, input_audio or image_url"),
                                        Some("messages"),
                                    ))
                                }
                            }
                        }
                        text
                    }
                };
                // Newer OpenAI clients send `developer` where templates know `system`.
                let role = if m.role == "developer" { "system".to_string() } else { m.role.clone() };
                let tool_calls = m.tool_calls.iter().flatten().map(super::tools::RequestToolCall::to_engine).collect();
                Ok(ChatMessage {
                    role,
                    content,
                    tool_calls,
                    tool_call_id: m.tool_call_id.clone(),
                    name: m.name.clone(),
                })
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: OneOrMany,
    /// Text after the insertion point: the prompt becomes the model's fill-in-the-middle one.
    pub suffix: Option<String>,
    #[serde(default)]
    pub echo: bool,
    pub best_of: Option<u32>,
    #[serde(flatten)]
    pub options: CommonOptions,
}

impl CompletionRequest {
    /// Options quorum does not serve, refused by name rather than ignored.
    pub fn check_supported(&self) -> Result<(), ApiError> {
        if self.echo {
            return Err(ApiError::invalid("echo is not supported by quorum; leave it out", Some("echo")));
        }
        if self.best_of.is_some_and(|b| b > 1) {
            return Err(ApiError::invalid("best_of is not supported by quorum; ask for n samples", Some("best_of")));
        }
        Ok(())
    }

    pub fn prompt(&mut self) -> Result<String, ApiError> {
        match std::mem::replace(&mut self.prompt, OneOrMany::Many(Vec::new())) {
            OneOrMany::One(p) => Ok(p),
            OneOrMany::Many(mut v) if v.len() == 1 => Ok(v.remove(0)),
            OneOrMany::Many(_) => Err(ApiError::invalid("prompt must be one string", Some("prompt"))),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// quorum's extension: speculative decoding of this request, where it drafted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speculation: Option<SpeculationUsage>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SpeculationUsage {
    pub drafted_tokens: u32,
    pub accepted_tokens: u32,
    pub acceptance_rate: f32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens, speculation: None }
    }

    pub fn with_speculation(mut self, s: Speculation) -> Usage {
        self.speculation = (s.drafted > 0).then(|| SpeculationUsage {
            drafted_tokens: s.drafted,
            accepted_tokens: s.accepted,
            acceptance_rate: s.accepted as f32 / s.drafted as f32,
        });
        self
    }
}
