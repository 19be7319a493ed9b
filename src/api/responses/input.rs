//! A Responses request's `instructions`, `input` items and tools, checked into the engine's
//! chat and tool request; stored turns are the same messages written as JSON.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::openai::{check_tool_name, MAX_MESSAGES, MAX_TOKENS, MAX_TOOLS};
use crate::engine::{ChatMessage, SamplingParams, ToolCall, ToolChoice, ToolRequest, ToolSpec};

#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    pub input: Value,
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Vec<Value>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub previous_response_id: Option<String>,
    pub store: Option<bool>,
    #[serde(default)]
    pub stream: bool,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub text: Option<Value>,
}

impl ResponsesRequest {
    /// This request's own turns: the instructions first, then the input items.
    pub fn messages(&self) -> Result<Vec<ChatMessage>, ApiError> {
        let mut out = Vec::new();
        if let Some(i) = &self.instructions {
            out.push(ChatMessage::new("system", i));
        }
        match &self.input {
            Value::String(text) => out.push(ChatMessage::new("user", text)),
            Value::Array(items) => {
                if items.len() > MAX_MESSAGES {
                    return Err(ApiError::invalid(
                        format!("at most {MAX_MESSAGES} input items are allowed"),
                        Some("input"),
                    ));
                }
                for item in items {
                    push_item(item, &mut out)?;
                }
            }
            _ => return Err(ApiError::invalid("input is a string or a list of items", Some("input"))),
        }
        Ok(out)
    }

    pub fn tools(&self) -> Result<Option<ToolRequest>, ApiError> {
        if self.tools.is_empty() {
            return Ok(None);
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(ApiError::invalid(format!("at most {MAX_TOOLS} tools are allowed"), Some("tools")));
        }
        let mut tools = Vec::new();
        for t in &self.tools {
            let kind = t["type"].as_str().unwrap_or("function");
            if kind != "function" {
                return Err(ApiError::invalid(
                    format!("tools of type `{kind}` are not supported; send function tools"),
                    Some("tools"),
                ));
            }
            let name = t["name"].as_str().unwrap_or_default();
            check_tool_name(name).map_err(|e| ApiError::invalid(e, Some("tools")))?;
            let parameters = match &t["parameters"] {
                Value::Null => json!({"type": "object"}),
                p if p.is_object() => p.clone(),
                _ => {
                    return Err(ApiError::invalid(
                        format!("the parameters of `{name}` must be a JSON schema object"),
                        Some("tools"),
                    ))
                }
            };
            let description = t["description"].as_str().map(str::to_string);
            tools.push(ToolSpec { name: name.to_string(), description, parameters });
        }
        let choice = match &self.tool_choice {
            None => ToolChoice::Auto,
            Some(Value::String(s)) if s == "auto" => ToolChoice::Auto,
            Some(Value::String(s)) if s == "none" => ToolChoice::None,
            Some(Value::String(s)) if s == "required" => ToolChoice::Required,
            Some(v) if v["type"] == "function" && v["name"].is_string() => {
                ToolChoice::Named(v["name"].as_str().unwrap_or_default().into())
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "tool_choice is \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"name\": ...}",
                    Some("tool_choice"),
                ))
            }
        };
        Ok(Some(ToolRequest { tools, choice, parallel: self.parallel_tool_calls.unwrap_or(true), grammar: true }))
    }

    pub fn sampling(&self) -> Result<SamplingParams, ApiError> {
        if let Some(n) = self.max_output_tokens.filter(|&n| n == 0 || n > MAX_TOKENS) {
            return Err(ApiError::invalid(
                format!("max_output_tokens is {n}; between 1 and {MAX_TOKENS}"),
                Some("max_output_tokens"),
            ));
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return Err(ApiError::invalid("temperature must be between 0 and 2", Some("temperature")));
        }
        if self.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
            return Err(ApiError::invalid("top_p must be greater than 0 and at most 1", Some("top_p")));
        }
        Ok(SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_output_tokens,
            ..SamplingParams::default()
        })
    }

    /// The JSON schema `text.format` asks the answer to follow (`json_object`: any object).
    pub fn schema(&self) -> Option<Value> {
        let format = self.text.as_ref()?.get("format")?;
        match format["type"].as_str()? {
            "json_object" => Some(json!({"type": "object"})),
            "json_schema" => Some(format.get("schema").cloned().unwrap_or(json!({}))),
            _ => None,
        }
    }
}

fn push_item(item: &Value, out: &mut Vec<ChatMessage>) -> Result<(), ApiError> {
    match item["type"].as_str().unwrap_or("message") {
        "message" => {
            let role = match item["role"].as_str().unwrap_or("user") {
                "developer" | "system" => "system",
                "assistant" => "assistant",
                "user" => "user",
                other => {
                    return Err(ApiError::invalid(
                        format!("input items of role `{other}` are not supported"),
                        Some("input"),
                    ))
                }
            };
            out.push(ChatMessage::new(role, text_of(&item["content"])?));
        }
        "function_call" => {
            let call = ToolCall {
                id: item["call_id"].as_str().unwrap_or_default().into(),
                name: item["name"].as_str().unwrap_or_default().into(),
                arguments: item["arguments"].as_str().unwrap_or("{}").into(),
            };
            // Calls of one turn go on one assistant message.
            match out.last_mut() {
                Some(last) if last.role == "assistant" && (last.content.is_empty() || !last.tool_calls.is_empty()) => {
                    last.tool_calls.push(call)
                }
                _ => {
                    out.push(ChatMessage { role: "assistant".into(), tool_calls: vec![call], ..ChatMessage::default() })
                }
            }
        }
        "function_call_output" => {
            let call_id = item["call_id"].as_str().unwrap_or_default().to_string();
            let name = out.iter().flat_map(|m| &m.tool_calls).find(|c| c.id == call_id).map(|c| c.name.clone());
            let content = match &item["output"] {
                Value::String(s) => s.clone(),
                other => text_of(other)?,
            };
            out.push(ChatMessage {
                role: "tool".into(),
                content,
                tool_call_id: Some(call_id),
                name,
                ..ChatMessage::default()
            });
        }
        "reasoning" => {}
        other => {
            return Err(ApiError::invalid(format!("input items of type `{other}` are not supported"), Some("input")))
        }
    }
    Ok(())
}

/// A content string, or its text parts joined.
fn text_of(content: &Value) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match part["type"].as_str().unwrap_or_default() {
                    "input_text" | "output_text" | "text" | "refusal" => {
                        text.push_str(part["text"].as_str().or(part["refusal"].as_str()).unwrap_or_default())
                    }
                    kind => {
                        return Err(ApiError::invalid(
                            format!("content parts of type `{kind}` are not supported yet; send text"),
                            Some("input"),
                        ))
                    }
                }
            }
            Ok(text)
        }
        _ => Err(ApiError::invalid("content is a string or a list of parts", Some("input"))),
    }
}

/// Messages as stored with a response, for `previous_response_id`.
pub fn to_json(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| {
                let calls: Vec<Value> =
                    m.tool_calls.iter().map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments})).collect();
                json!({"role": m.role, "content": m.content, "tool_calls": calls, "tool_call_id": m.tool_call_id, "name": m.name})
            })
            .collect(),
    )
}

pub fn from_json(value: &Value) -> Vec<ChatMessage> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| ChatMessage {
            role: text(&m["role"]),
            content: text(&m["content"]),
            tool_calls: m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| ToolCall { id: text(&c["id"]), name: text(&c["name"]), arguments: text(&c["arguments"]) })
                .collect(),
            tool_call_id: m["tool_call_id"].as_str().map(str::to_string),
            name: m["name"].as_str().map(str::to_string),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: Value) -> ResponsesRequest {
        serde_json::from_value(json!({"model": "coder", "input": input, "instructions": "Be brief."})).unwrap()
    }

    #[test]
    fn items_become_turns_with_calls_and_results_paired() {
        let req = request(json!([
            {"role": "user", "content": "weather in paris?"},
            {"type": "function_call", "call_id": "call_0", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}", "id": "fc_0"},
            {"type": "function_call", "call_id": "call_1", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_0", "output": "sunny"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
        ]));
        let m = req.messages().unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
        assert_eq!(m[2].tool_calls.len(), 2);
        assert_eq!((m[3].tool_call_id.as_deref(), m[3].name.as_deref()), (Some("call_0"), Some("get_weather")));
        assert_eq!(m[4].content, "thanks");
        assert_eq!(from_json(&to_json(&m)), m, "stored turns read back the same");
    }

    #[test]
    fn images_and_unknown_items_are_refused_by_name() {
        let img = request(json!([{"role": "user", "content": [{"type": "input_image", "image_url": "data:"}]}]));
        assert!(img.messages().unwrap_err().message.contains("input_image"));
        let other = request(json!([{"type": "item_reference", "id": "x"}]));
        assert!(other.messages().unwrap_err().message.contains("item_reference"));
    }
}
