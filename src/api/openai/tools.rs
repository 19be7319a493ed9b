//! Tool calling in OpenAI's shape: `tools`, `tool_choice` and `parallel_tool_calls` checked
//! into the engine's [`ToolRequest`], and calls written back as `message.tool_calls` or as
//! streamed `delta.tool_calls`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::respond::unique_suffix;
use super::types::ChatRequest;
use crate::api::error::ApiError;
#[cfg(test)]
use crate::engine::ToolFormat;
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
/// the rest is held and read as calls when the choice ends. [`StreamedChoice::pieces`]
/// also sends each call's name as soon as it is written and its JSON arguments as they
/// come (where the family writes calls as JSON objects with a name and then arguments).
#[derive(Debug)]
pub struct StreamedChoice {
    parser: ToolParser,
    text: String,
    sent: usize,
    /// Calls announced so far: where each one's arguments start in `text`, and how many
    /// bytes of them went out.
    calls: Vec<(usize, usize)>,
}

/// What a streamed choice with tools sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A new call, with its index among the choice's calls.
    Call {
        index: usize,
        name: String,
    },
    Arguments {
        index: usize,
        chunk: String,
    },
}

impl StreamedChoice {
    pub fn new(parser: ToolParser) -> StreamedChoice {
        StreamedChoice { parser, text: String::new(), sent: 0, calls: Vec::new() }
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

    /// Text, new calls and argument chunks that can go out now.
    pub fn pieces(&mut self, text: &str) -> Vec<Piece> {
        let mut out = Vec::new();
        if self.calls.is_empty() {
            out.extend(self.push(text).map(Piece::Text));
        } else {
            // Once a call is out, the rest is read as calls only.
            self.text.push_str(text);
        }
        let held = &self.text[self.sent..];
        let most = if self.parser.parallel() { usize::MAX } else { 1 };
        for (index, found) in scan_calls(held).into_iter().take(most).enumerate() {
            let upto = self.sent + found.end.unwrap_or(held.len());
            if index == self.calls.len() {
                out.push(Piece::Call { index, name: found.name });
                self.calls.push((self.sent + found.start, 0));
            }
            let (start, sent) = &mut self.calls[index];
            if upto > *start + *sent {
                out.push(Piece::Arguments { index, chunk: self.text[*start + *sent..upto].to_string() });
                *sent = upto - *start;
            }
        }
        out
    }

    /// The end of the choice: held text that turned out not to be a call, and the calls
    /// not streamed yet, whole.
    pub fn finish_pieces(&mut self) -> Vec<Piece> {
        let streamed = std::mem::take(&mut self.calls);
        let parsed = self.finish();
        let mut out = Vec::new();
        if !parsed.content.is_empty() {
            out.push(Piece::Text(parsed.content));
        }
        for (index, call) in parsed.calls.into_iter().enumerate().skip(streamed.len()) {
            out.push(Piece::Call { index, name: call.name });
            out.push(Piece::Arguments { index, chunk: call.arguments });
        }
        out
    }
}

/// A call found in held text: its name, and where its JSON arguments start and (once
/// written) end.
#[derive(Debug, PartialEq)]
struct FoundCall {
    name: String,
    start: usize,
    end: Option<usize>,
}

/// Calls written as `"name": "...", "arguments": {...}` (or `"parameters"`, Llama 3's key),
/// in order, up to the first one whose arguments are not finished or not an object.
fn scan_calls(text: &str) -> Vec<FoundCall> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("\"name\"").map(|i| from + i) {
        let Some((name, start)) = call_head(text, at + "\"name\"".len()) else {
            from = at + 1;
            continue;
        };
        if !text[start..].starts_with('{') {
            break;
        }
        let end = json_end(&text[start..]).map(|n| start + n);
        found.push(FoundCall { name, start, end });
        match end {
            Some(end) => from = end,
            None => break,
        }
    }
    found
}

/// After a `"name"` key: `: "NAME", "arguments": ` and the offset where the value starts.
fn call_head(text: &str, mut i: usize) -> Option<(String, usize)> {
    let skip_ws = |i: usize| i + text[i..].len() - text[i..].trim_start().len();
    let expect = |i: usize, what: &str| text[skip_ws(i)..].starts_with(what).then(|| skip_ws(i) + what.len());
    i = expect(i, ":")?;
    i = skip_ws(i);
    let name_end = i + json_end(&text[i..])?;
    let name: String = serde_json::from_str(&text[i..name_end]).ok()?;
    i = expect(name_end, ",")?;
    i = expect(i, "\"arguments\"").or_else(|| expect(i, "\"parameters\""))?;
    i = expect(i, ":")?;
    let start = skip_ws(i);
    (start < text.len()).then_some((name, start))
}

/// The length of the JSON string, object or array `text` starts with, once it is closed.
fn json_end(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 && !c.is_whitespace() => return None,
            _ => {}
        }
    }
    None
}

/// `delta.tool_calls` entries: a call's id and name, or a chunk of its arguments.
pub fn call_delta(piece: &Piece) -> Option<Value> {
    match piece {
        Piece::Call { index, name } => Some(
            json!({"index": index, "id": call_id(), "type": "function", "function": {"name": name, "arguments": ""}}),
        ),
        Piece::Arguments { index, chunk } => Some(json!({"index": index, "function": {"arguments": chunk}})),
        Piece::Text(_) => None,
    }
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

    fn parser(format: ToolFormat, parallel: bool) -> ToolParser {
        let tools = ["get_weather", "get_time"].map(|name| ToolSpec {
            name: name.into(),
            description: None,
            parameters: json!({"type": "object"}),
        });
        ToolParser::new(format, tools.to_vec(), parallel)
    }

    fn streamed(format: ToolFormat, parallel: bool, tokens: &[&str]) -> Vec<Piece> {
        let mut choice = StreamedChoice::new(parser(format, parallel));
        let mut out: Vec<Piece> = tokens.iter().flat_map(|t| choice.pieces(t)).collect();
        out.extend(choice.finish_pieces());
        out
    }

    /// Joins consecutive argument chunks of a call, to compare with what a client gets.
    fn joined(pieces: &[Piece]) -> Vec<Piece> {
        let mut out: Vec<Piece> = Vec::new();
        for p in pieces {
            match (out.last_mut(), p) {
                (Some(Piece::Arguments { index: a, chunk }), Piece::Arguments { index: b, chunk: more }) if a == b => {
                    chunk.push_str(more)
                }
                _ => out.push(p.clone()),
            }
        }
        out
    }

    #[test]
    fn arguments_stream_as_they_are_written() {
        let tokens = [
            "Let me check.",
            "<tool_call>\n{\"name\": ",
            "\"get_weather\", \"argu",
            "ments\": {\"ci",
            "ty\": \"Pa",
            "ris\"}",
            "}\n</tool_call>",
        ];
        let pieces = streamed(ToolFormat::Hermes, false, &tokens);
        let args: Vec<&str> = pieces
            .iter()
            .filter_map(|p| if let Piece::Arguments { chunk, .. } = p { Some(chunk.as_str()) } else { None })
            .collect();
        assert_eq!(args, ["{\"ci", "ty\": \"Pa", "ris\"}"], "{pieces:?}");
        assert_eq!(pieces[0], Piece::Text("Let me check.".into()));
        assert_eq!(pieces[1], Piece::Call { index: 0, name: "get_weather".into() });
        assert_eq!(pieces.len(), 5, "nothing more at the end: {pieces:?}");
    }

    #[test]
    fn streamed_calls_equal_the_calls_parsed_at_the_end() {
        let answers = [
            (ToolFormat::Hermes, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\", \"tz\": [1, {\"a\": \"}\"}]}}\n</tool_call>"),
            (ToolFormat::Hermes, "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```"),
            (ToolFormat::Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call>"),
            (ToolFormat::Mistral, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]"),
            (ToolFormat::Llama3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"),
            (ToolFormat::QwenXml, "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"),
        ];
        for (format, answer) in answers {
            // Token by token, a few characters each.
            let chars: Vec<char> = answer.chars().collect();
            let tokens: Vec<String> = chars.chunks(3).map(|c| c.iter().collect()).collect();
            let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
            let pieces = joined(&streamed(format, true, &tokens));
            let parsed = parser(format, true).parse(answer);
            assert!(!parsed.calls.is_empty(), "{answer}");
            let mut expected = Vec::new();
            for (index, c) in parsed.calls.iter().enumerate() {
                expected.push(Piece::Call { index, name: c.name.clone() });
                expected.push(Piece::Arguments { index, chunk: c.arguments.clone() });
            }
            // Arguments go out as written; as JSON they are the parsed ones.
            let normal = |p: &Piece| match p {
                Piece::Arguments { index, chunk } => Piece::Arguments {
                    index: *index,
                    chunk: serde_json::from_str::<Value>(chunk).unwrap_or_else(|e| panic!("{e}: {chunk}")).to_string(),
                },
                p => p.clone(),
            };
            let got: Vec<Piece> = pieces.iter().map(normal).collect();
            let expected: Vec<Piece> = expected.iter().map(normal).collect();
            assert_eq!(got, expected, "{format:?}: {answer}");
        }
        // One call only where parallel calls are off.
        let two = answers[2].1;
        let pieces = streamed(ToolFormat::Hermes, false, &[two]);
        assert_eq!(pieces.iter().filter(|p| matches!(p, Piece::Call { .. })).count(), 1, "{pieces:?}");
    }

    #[test]
    fn names_a_grammar_could_not_hold_are_refused() {
        assert!(check_name("get_weather-2.v1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a\" ::= b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
