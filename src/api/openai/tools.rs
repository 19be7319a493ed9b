//! Tool calling in OpenAI's shape: `tools`, `tool_choice` and `parallel_tool_calls` checked
//! into the engine's [`ToolRequest`], and calls written back as `message.tool_calls` or as
//! streamed `delta.tool_calls`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::respond::unique_suffix;
use super::types::ChatRequest;
use crate::api::error::ApiError;
use crate::engine::{Parsed, ToolCall, ToolChoice, ToolParser, ToolRequest, ToolSpec};

/// Tools one request may offer.
pub const MAX_TOOLS: usize = 128;

#[derive(Debug, Deserialize)]
pub struct RequestTool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: Option<FunctionDef>,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct RequestToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: CalledFunction,
}

#[derive(Debug, Deserialize)]
pub struct CalledFunction {
    pub name: String,
    /// JSON text as OpenAI sends it; some clients send the object itself.
    #[serde(default)]
    pub arguments: Value,
}

impl RequestToolCall {
    pub fn to_engine(&self) -> ToolCall {
        let arguments = match &self.function.arguments {
            Value::String(s) => s.clone(),
            Value::Null => "{}".to_string(),
            other => other.to_string(),
        };
        ToolCall { id: self.id.clone().unwrap_or_default(), name: self.function.name.clone(), arguments }
    }
}

/// OpenAI's rule for function names, which also keeps them safe inside a grammar.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!("tool name `{name}` must be 1 to 64 letters, digits, `_`, `-` or `.`"))
    }
}

/// The tool part of a chat request; `None` when it offers no tools.
pub fn request(req: &ChatRequest) -> Result<Option<ToolRequest>, ApiError> {
    if req.tools.is_empty() {
        if req.tool_choice.as_ref().is_some_and(|c| c != "none" && c != "auto") {
            return Err(ApiError::invalid("tool_choice needs tools", Some("tool_choice")));
        }
        return Ok(None);
    }
    if req.tools.len() > MAX_TOOLS {
        return Err(ApiError::invalid(format!("at most {MAX_TOOLS} tools are allowed"), Some("tools")));
    }
    let mut tools = Vec::with_capacity(req.tools.len());
    for tool in &req.tools {
        let function = match (&tool.kind[..], &tool.function) {
            ("function", Some(f)) => f,
            (kind, _) => {
                return Err(ApiError::invalid(
                    format!(
                    "tools of type `{kind}` are not supported; send {{\"type\": \"function\", \"function\": {{...}}}}"
                ),
                    Some("tools"),
                ))
            }
        };
        check_name(&function.name).map_err(|e| ApiError::invalid(e, Some("tools")))?;
        let parameters = function.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        if !parameters.is_object() {
            return Err(ApiError::invalid(
                format!("the parameters of `{}` must be a JSON schema object", function.name),
                Some("tools"),
            ));
        }
        tools.push(ToolSpec { name: function.name.clone(), description: function.description.clone(), parameters });
    }
    let choice = choice(req.tool_choice.as_ref())?;
    if let ToolChoice::Named(name) = &choice {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(ApiError::invalid(
                format!("tool_choice names `{name}`, which is not among the tools"),
                Some("tool_choice"),
            ));
        }
    }
    let parallel = req.parallel_tool_calls.unwrap_or(true);
    Ok(Some(ToolRequest { tools, choice, parallel, grammar: req.tool_grammar.unwrap_or(true) }))
}

fn choice(value: Option<&Value>) -> Result<ToolChoice, ApiError> {
    let bad = || {
        ApiError::invalid(
            "tool_choice is \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
            Some("tool_choice"),
        )
    };
    Ok(match value {
        None => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" | "any" => ToolChoice::Required,
            _ => return Err(bad()),
        },
        Some(v) => {
            let name = v.pointer("/function/name").or_else(|| v.get("name")).and_then(Value::as_str).ok_or_else(bad)?;
            ToolChoice::Named(name.to_string())
        }
    })
}

/// A call's id, as OpenAI writes them.
pub fn call_id() -> String {
    format!("call_{}", unique_suffix())
}

/// `message.tool_calls` entries.
pub fn calls_json(parsed: &Parsed) -> Vec<Value> {
    parsed
        .calls
        .iter()
        .map(|c| json!({"id": call_id(), "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect()
}

/// A streamed choice with tools: text goes out as it comes up to where a call may start;
/// the rest is held and read as calls when the choice ends.
#[derive(Debug)]
pub struct StreamedChoice {
    parser: ToolParser,
    text: String,
    sent: usize,
}

impl StreamedChoice {
    pub fn new(parser: ToolParser) -> StreamedChoice {
        StreamedChoice { parser, text: String::new(), sent: 0 }
    }

    /// Text that can go out now.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.text.push_str(text);
        let safe = self.parser.text_prefix(&self.text).max(self.sent);
        let out = self.text[self.sent..safe].to_string();
        self.sent = safe;
        (!out.is_empty()).then_some(out)
    }

    /// What was held back, read as text and calls.
    pub fn finish(&mut self) -> Parsed {
        let rest = std::mem::take(&mut self.text).split_off(self.sent);
        self.parser.parse(&rest)
    }
}

/// `delta.tool_calls` for one choice's calls: per call, its id and name, then its arguments.
pub fn call_deltas(parsed: &Parsed) -> Vec<Value> {
    let mut deltas = Vec::new();
    for (index, call) in parsed.calls.iter().enumerate() {
        deltas.push(json!({"index": index, "id": call_id(), "type": "function", "function": {"name": call.name, "arguments": ""}}));
        deltas.push(json!({"index": index, "function": {"arguments": call.arguments}}));
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_choices_in_every_form() {
        assert_eq!(choice(None).unwrap(), ToolChoice::Auto);
        assert_eq!(choice(Some(&json!("none"))).unwrap(), ToolChoice::None);
        assert_eq!(choice(Some(&json!("required"))).unwrap(), ToolChoice::Required);
        let named = json!({"type": "function", "function": {"name": "get_weather"}});
        assert_eq!(choice(Some(&named)).unwrap(), ToolChoice::Named("get_weather".into()));
        assert_eq!(choice(Some(&json!("sometimes"))).unwrap_err().param, Some("tool_choice"));
    }

    #[test]
    fn names_a_grammar_could_not_hold_are_refused() {
        assert!(check_name("get_weather-2.v1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\" ::= b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
