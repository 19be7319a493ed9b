//! Anthropic's Messages request, checked into the engine's chat, tools and sampling.

use serde::Deserialize;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::openai::{check_tool_name, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES, MAX_TOKENS, MAX_TOOLS};
use crate::engine::{ChatMessage, SamplingParams, ToolCall, ToolChoice, ToolRequest, ToolSpec};

#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// Required by `/v1/messages`; `count_tokens` has none.
    pub max_tokens: Option<u32>,
    pub system: Option<Content>,
    #[serde(default)]
    pub stop_sequences: Vec<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub tools: Vec<Tool>,
    pub tool_choice: Option<Choice>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<Content>,
        #[serde(default)]
        is_error: bool,
    },
    Image {
        #[serde(default)]
        source: Option<ImageSource>,
    },
    Document {},
    Thinking {},
    RedactedThinking {},
}

/// An image block's source: base64 data, or a URL (a data URL or a workspace file).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

impl ImageSource {
    /// The source as an `image_url` URL.
    pub fn url(&self) -> String {
        match self {
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            ImageSource::Url { url } => url.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Option<Value>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Choice {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    #[serde(default)]
    pub disable_parallel_tool_use: bool,
}

/// A prompt for the engine: the chat, what follows the assistant's opened turn (a prefill
/// the model continues), and the tools.
pub struct Conversation {
    pub messages: Vec<ChatMessage>,
    pub prefill: String,
    pub tools: Option<ToolRequest>,
}

impl Content {
    /// Text blocks joined; a tool result's blocks too.
    fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Blocks(blocks) => blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

impl MessagesRequest {
    pub fn conversation(&self) -> Result<Conversation, ApiError> {
        if self.messages.is_empty() || self.messages.len() > MAX_MESSAGES {
            return Err(ApiError::invalid(
                format!("messages: between 1 and {MAX_MESSAGES} are allowed"),
                Some("messages"),
            ));
        }
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(ChatMessage::new("system", system.text()));
        }
        // Results name the call they answer; templates want the function's name too.
        let mut names = std::collections::HashMap::new();
        for m in &self.messages {
            match m.role.as_str() {
                "user" => user_turn(&m.content, &names, &mut messages)?,
                "assistant" => messages.push(assistant_turn(&m.content, &mut names)?),
                other => {
                    return Err(ApiError::invalid(
                        format!("messages: role `{other}` is not allowed; use user or assistant, and `system` for the system prompt"),
                        Some("messages"),
                    ))
                }
            }
        }
        let mut prefill = String::new();
        if messages.last().is_some_and(|m| m.role == "assistant" && m.tool_calls.is_empty()) {
            prefill = messages.pop().map(|m| m.content).unwrap_or_default();
        }
        Ok(Conversation { messages, prefill, tools: self.tool_request()? })
    }

    fn tool_request(&self) -> Result<Option<ToolRequest>, ApiError> {
        if self.tools.is_empty() {
            return Ok(None);
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(ApiError::invalid(format!("tools: at most {MAX_TOOLS} are allowed"), Some("tools")));
        }
        let mut tools = Vec::new();
        for t in &self.tools {
            if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
                return Err(ApiError::invalid(
                    format!("tools: server tools (`{kind}`) are not supported; define a custom tool with input_schema"),
                    Some("tools"),
                ));
            }
            check_tool_name(&t.name).map_err(|e| ApiError::invalid(format!("tools: {e}"), Some("tools")))?;
            let parameters = t.input_schema.clone().unwrap_or_else(|| serde_json::json!({"type": "object"}));
            if !parameters.is_object() {
                return Err(ApiError::invalid(
                    format!("tools: the input_schema of `{}` must be an object", t.name),
                    Some("tools"),
                ));
            }
            tools.push(ToolSpec { name: t.name.clone(), description: t.description.clone(), parameters });
        }
        let (choice, single) = match &self.tool_choice {
            None => (ToolChoice::Auto, false),
            Some(c) => {
                let choice = match (c.kind.as_str(), &c.name) {
                    ("auto", _) => ToolChoice::Auto,
                    ("any", _) => ToolChoice::Required,
                    ("none", _) => ToolChoice::None,
                    ("tool", Some(name)) => ToolChoice::Named(name.clone()),
                    _ => {
                        return Err(ApiError::invalid(
                            "tool_choice: type is auto, any, tool (with a name) or none",
                            Some("tool_choice"),
                        ))
                    }
                };
                (choice, c.disable_parallel_tool_use)
            }
        };
        Ok(Some(ToolRequest { tools, choice, parallel: !single, grammar: true }))
    }

    pub fn sampling(&self) -> Result<SamplingParams, ApiError> {
        let max_tokens =
            self.max_tokens.ok_or_else(|| ApiError::invalid("max_tokens: Field required", Some("max_tokens")))?;
        if max_tokens == 0 || max_tokens > MAX_TOKENS {
            return Err(ApiError::invalid(format!("max_tokens: between 1 and {MAX_TOKENS}"), Some("max_tokens")));
        }
        if self.temperature.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
            return Err(ApiError::invalid("temperature: between 0 and 1", Some("temperature")));
        }
        if self.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(ApiError::invalid("top_p: greater than 0 and at most 1", Some("top_p")));
        }
        if self.stop_sequences.len() > MAX_STOP || self.stop_sequences.iter().any(|s| s.len() > MAX_STOP_BYTES) {
            return Err(ApiError::invalid(
                format!("stop_sequences: at most {MAX_STOP}, each at most {MAX_STOP_BYTES} bytes"),
                Some("stop_sequences"),
            ));
        }
        Ok(SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            max_tokens: Some(max_tokens),
            stop: self.stop_sequences.clone(),
            ..SamplingParams::default()
        })
    }
}

/// A user turn: its tool results (as `tool` messages, first) and its text.
fn user_turn(
    content: &Content,
    names: &std::collections::HashMap<String, String>,
    out: &mut Vec<ChatMessage>,
) -> Result<(), ApiError> {
    let Content::Blocks(blocks) = content else {
        out.push(ChatMessage::new("user", content.text()));
        return Ok(());
    };
    let mut text = Vec::new();
    for block in blocks {
        match block {
            Block::Text { text: t } => text.push(t.as_str()),
            Block::ToolResult { tool_use_id, content, is_error } => {
                let body = content.as_ref().map(Content::text).unwrap_or_default();
                out.push(ChatMessage {
                    role: "tool".into(),
                    content: if *is_error { format!("Error: {body}") } else { body },
                    tool_call_id: Some(tool_use_id.clone()),
                    name: names.get(tool_use_id).cloned(),
                    ..ChatMessage::default()
                });
            }
            Block::Image { .. } | Block::Document {} => return Err(unsupported_block()),
            _ => {}
        }
    }
    if !text.is_empty() {
        out.push(ChatMessage::new("user", text.join("\n")));
    }
    Ok(())
}

fn assistant_turn(
    content: &Content,
    names: &mut std::collections::HashMap<String, String>,
) -> Result<ChatMessage, ApiError> {
    let mut message = ChatMessage::new("assistant", "");
    let Content::Blocks(blocks) = content else {
        message.content = content.text();
        return Ok(message);
    };
    let mut text = Vec::new();
    for block in blocks {
        match block {
            Block::Text { text: t } => text.push(t.as_str()),
            Block::ToolUse { id, name, input } => {
                names.insert(id.clone(), name.clone());
                let arguments = if input.is_null() { "{}".to_string() } else { input.to_string() };
                message.tool_calls.push(ToolCall { id: id.clone(), name: name.clone(), arguments });
            }
            Block::Image { .. } | Block::Document {} => return Err(unsupported_block()),
            _ => {}
        }
    }
    message.content = text.join("\n");
    Ok(message)
}

fn unsupported_block() -> ApiError {
    ApiError::invalid(
        "messages: document blocks, and image blocks outside user turns, are not supported; send text",
        Some("messages"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> MessagesRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn tool_use_and_tool_result_blocks_become_calls_and_tool_turns() {
        let req = request(serde_json::json!({
            "model": "coder", "max_tokens": 10, "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "And tomorrow?"}]},
            ],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        }));
        let c = req.conversation().unwrap();
        let roles: Vec<&str> = c.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
        assert_eq!(c.messages[2].tool_calls[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!((c.messages[3].content.as_str(), c.messages[3].name.as_deref()), ("sunny", Some("get_weather")));
        let tools = c.tools.unwrap();
        assert_eq!((tools.choice, tools.parallel), (ToolChoice::Required, false));
        assert!(c.prefill.is_empty());
    }

    #[test]
    fn a_last_assistant_turn_is_a_prefill() {
        let req = request(serde_json::json!({"model": "coder", "max_tokens": 10, "messages": [
            {"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "The color is"}]}));
        let c = req.conversation().unwrap();
        assert_eq!((c.messages.len(), c.prefill.as_str()), (1, "The color is"));
    }

    #[test]
    fn max_tokens_is_required_and_temperature_is_anthropics_range() {
        let no_max = request(serde_json::json!({"model": "coder", "messages": [{"role": "user", "content": "hi"}]}));
        assert!(no_max.sampling().unwrap_err().message.contains("max_tokens"));
        let hot = request(serde_json::json!({"model": "c", "max_tokens": 5, "temperature": 1.5, "messages": []}));
        assert!(hot.sampling().unwrap_err().message.contains("temperature"));
    }
}
