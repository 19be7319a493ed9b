//! Calls out of a model's answer, one parser per family. Lenient: a call cut short by the
//! token limit or written with a missing closing tag still comes out, and what does not
//! parse as a call stays text.

use serde_json::Value;

use super::ToolFormat;
use crate::engine::request::ToolSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCall {
    pub name: String,
    /// JSON text (the raw text where the model wrote no valid JSON).
    pub arguments: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub content: String,
    pub calls: Vec<ParsedCall>,
}

pub fn parse(format: ToolFormat, text: &str, tools: &[ToolSpec]) -> Parsed {
    let parsed = match format {
        ToolFormat::Hermes => tagged(text, "<tool_call>", "</tool_call>", |inner| json_calls(inner, "arguments"))
            .or_else(|| bare_call(text, tools)),
        ToolFormat::QwenXml => tagged(text, "<tool_call>", "</tool_call>", |inner| xml_call(inner, tools)),
        ToolFormat::Nemotron => tagged(text, "<TOOLCALL>", "</TOOLCALL>", |inner| json_calls(inner, "arguments")),
        ToolFormat::Mistral => mistral(text),
        ToolFormat::Llama3 => llama3(text),
        ToolFormat::Generic => generic(text),
    };
    parsed.unwrap_or_else(|| Parsed { content: text.to_string(), calls: Vec::new() })
}

/// Calls between `open` and `close` tags; the text before the first is the content. None
/// when no block parses.
fn tagged(text: &str, open: &str, close: &str, inner: impl Fn(&str) -> Option<Vec<ParsedCall>>) -> Option<Parsed> {
    let first = text.find(open)?;
    let mut calls = Vec::new();
    let mut content = text[..first].to_string();
    let mut rest = &text[first..];
    while let Some(at) = rest.find(open) {
        content.push_str(&rest[..at]);
        let body = &rest[at + open.len()..];
        let (block, after) = match body.find(close) {
            Some(end) => (&body[..end], &body[end + close.len()..]),
            None => (body, ""),
        };
        calls.extend(inner(block.trim())?);
        rest = after;
    }
    content.push_str(rest);
    Some(Parsed { content: content.trim().to_string(), calls })
}

/// The answer is call objects fenced as ```json (one block each) or one bare, all naming
/// one of the tools.
fn bare_call(text: &str, tools: &[ToolSpec]) -> Option<Parsed> {
    let body = text.trim();
    let mut calls = Vec::new();
    if body.starts_with("```") {
        // ```json A ``` ```json B ```: the odd pieces between fences are the blocks.
        for block in body.split("```").skip(1).step_by(2) {
            calls.extend(json_calls(block.strip_prefix("json").unwrap_or(block), "arguments")?);
        }
    } else {
        // Qwen2.5-Coder-1.5B's template shows the call as `{{"name": ...}}` (its braces
        // doubled), and the model copies them.
        let body = match (body.strip_prefix("{{"), body.strip_suffix("}}")) {
            (Some(_), Some(_)) if body.len() > 4 => &body[1..body.len() - 1],
            _ => body,
        };
        calls = json_calls(body, "arguments")?;
    }
    let known = |c: &ParsedCall| tools.iter().any(|t| t.name == c.name);
    (!calls.is_empty() && calls.iter().all(known)).then(|| Parsed { content: String::new(), calls })
}

/// Whether a streamed answer so far may be the start of a fenced or bare call object.
pub fn may_open_bare_call(text: &str) -> bool {
    let body = text.trim_start();
    if "```json".starts_with(body) {
        return true;
    }
    let body = body.strip_prefix("```json").or_else(|| body.strip_prefix("```")).unwrap_or(body);
    let squeezed: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let squeezed = squeezed.strip_prefix('{').filter(|rest| rest.starts_with('{')).unwrap_or(&squeezed);
    const OPEN: &str = "{\"name\":";
    OPEN.starts_with(squeezed) || squeezed.starts_with(OPEN)
}

/// One call object, or a list of them: `{"name": ..., "<args_key>": {...}}`.
fn json_calls(text: &str, args_key: &str) -> Option<Vec<ParsedCall>> {
    let text = text.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```").trim();
    let value: Value = serde_json::from_str(text).ok()?;
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    items.iter().map(|item| call_object(item, args_key)).collect()
}

fn call_object(item: &Value, args_key: &str) -> Option<ParsedCall> {
    let item = item.get("function").unwrap_or(item);
    let name = item.get("name")?.as_str()?.to_string();
    let arguments = match item.get(args_key).or_else(|| item.get("arguments")).or_else(|| item.get("parameters")) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "{}".to_string(),
    };
    Some(ParsedCall { name, arguments })
}

/// `<function=NAME><parameter=P>value</parameter>...</function>`; a value is JSON where its
/// parameter is not a string (by the tool's schema) and parses as JSON.
fn xml_call(block: &str, tools: &[ToolSpec]) -> Option<Vec<ParsedCall>> {
    let rest = block.strip_prefix("<function=")?;
    let (name, mut rest) = rest.split_once('>')?;
    let schema = tools.iter().find(|t| t.name == name).map(|t| &t.parameters);
    let mut arguments = serde_json::Map::new();
    while let Some(at) = rest.find("<parameter=") {
        let (param, after) = rest[at + "<parameter=".len()..].split_once('>')?;
        let (value, after) = after.split_once("</parameter>").unwrap_or((after, ""));
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        let is_string =
            schema.and_then(|s| s.pointer(&format!("/properties/{param}/type"))).is_none_or(|t| t == "string");
        let value = match serde_json::from_str::<Value>(value) {
            Ok(v) if !is_string => v,
            _ => Value::String(value.to_string()),
        };
        arguments.insert(param.to_string(), value);
        rest = after;
    }
    Some(vec![ParsedCall { name: name.trim().to_string(), arguments: Value::Object(arguments).to_string() }])
}

/// `[TOOL_CALLS][{...}, ...]`, or `[TOOL_CALLS]NAME[ARGS]{...}` repeated.
fn mistral(text: &str) -> Option<Parsed> {
    const MARK: &str = "[TOOL_CALLS]";
    let first = text.find(MARK)?;
    let content = text[..first].trim().to_string();
    let mut calls = Vec::new();
    for part in text[first..].split(MARK).map(str::trim).filter(|p| !p.is_empty()) {
        if part.starts_with('[') || part.starts_with('{') {
            calls.extend(json_calls(part, "arguments")?);
        } else {
            let (name, args) = part.split_once("[ARGS]")?;
            let args = args.trim();
            let arguments = match serde_json::from_str::<Value>(args) {
                Ok(v) => v.to_string(),
                Err(_) => args.to_string(),
            };
            calls.push(ParsedCall { name: name.trim().to_string(), arguments });
        }
    }
    Some(Parsed { content, calls })
}

/// A bare call object (after `<|python_tag|>` if the model wrote one); several are
/// separated by `;`.
fn llama3(text: &str) -> Option<Parsed> {
    let body = text.trim();
    let body = body.strip_prefix("<|python_tag|>").unwrap_or(body).trim();
    if !body.starts_with('{') {
        let at = body.find("{\"name\"")?;
        let mut parsed = llama3(&body[at..])?;
        parsed.content = body[..at].trim().to_string();
        return Some(parsed);
    }
    let calls = body
        .split(";{")
        .enumerate()
        .map(|(i, part)| if i == 0 { part.to_string() } else { format!("{{{part}") })
        .map(|part| json_calls(&part, "parameters").and_then(|mut c| c.pop()))
        .collect::<Option<Vec<_>>>()?;
    Some(Parsed { content: String::new(), calls })
}

/// `{"tool_calls": [...]}`, `{"tool_call": {...}}` or `{"response": "..."}`.
fn generic(text: &str) -> Option<Parsed> {
    let value: Value = serde_json::from_str(text.trim()).ok()?;
    if let Some(response) = value.get("response") {
        let content = response.as_str().map(str::to_string).unwrap_or_else(|| response.to_string());
        return Some(Parsed { content, calls: Vec::new() });
    }
    let calls = match (value.get("tool_calls"), value.get("tool_call")) {
        (Some(Value::Array(items)), _) => items.iter().map(|i| call_object(i, "arguments")).collect::<Option<_>>()?,
        (_, Some(one)) => vec![call_object(one, "arguments")?],
        _ => return None,
    };
    Some(Parsed { content: String::new(), calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ParsedCall {
        ParsedCall { name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn hermes_calls_and_the_text_before_them() {
        let text = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        let p = parse(ToolFormat::Hermes, text, &[]);
        assert_eq!(p.content, "Let me look.");
        assert_eq!(p.calls, vec![call("get_weather", r#"{"city":"Paris"}"#), call("get_time", "{}")]);
    }

    fn weather() -> Vec<ToolSpec> {
        vec![ToolSpec { name: "get_weather".into(), description: None, parameters: serde_json::json!({}) }]
    }

    #[test]
    fn the_fenced_call_small_qwen_coders_write_is_a_call_when_it_names_a_tool() {
        let text = "```json\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\"city\": \"Paris\"}\n}\n```";
        let p = parse(ToolFormat::Hermes, text, &weather());
        assert_eq!(p.calls, vec![call("get_weather", r#"{"city":"Paris"}"#)]);
        let doubled = "{{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}";
        assert_eq!(
            parse(ToolFormat::Hermes, doubled, &weather()).calls,
            vec![call("get_weather", r#"{"city":"Paris"}"#)]
        );
        assert!(may_open_bare_call("{{\"na"));
        let two = format!("{text}\n{text}");
        assert_eq!(parse(ToolFormat::Hermes, &two, &weather()).calls.len(), 2, "a fenced block per call");
        let unknown = text.replace("get_weather", "delete_all");
        assert!(parse(ToolFormat::Hermes, &unknown, &weather()).calls.is_empty());
        assert!(
            may_open_bare_call("  ```js")
                && may_open_bare_call("```json\n{\n  \"na")
                && may_open_bare_call("{\"name\": \"x")
        );
        assert!(!may_open_bare_call("Paris is sunny") && !may_open_bare_call("```python\n"));
    }

    #[test]
    fn a_call_cut_short_is_text() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"argu";
        let p = parse(ToolFormat::Hermes, text, &[]);
        assert!(p.calls.is_empty());
        assert_eq!(p.content, text);
    }

    #[test]
    fn a_missing_closing_tag_still_gives_the_call() {
        let p = parse(ToolFormat::Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1}}", &[]);
        assert_eq!(p.calls, vec![call("f", r#"{"a":1}"#)]);
    }

    #[test]
    fn qwen3_coder_xml_with_typed_values() {
        let tools = vec![ToolSpec {
            name: "edit".into(),
            description: None,
            parameters: serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}}),
        }];
        let text = "<tool_call>\n<function=edit>\n<parameter=path>\nsrc/1.rs\n</parameter>\n<parameter=line>\n42\n</parameter>\n</function>\n</tool_call>";
        let p = parse(ToolFormat::QwenXml, text, &tools);
        assert_eq!(p.calls, vec![call("edit", r#"{"path":"src/1.rs","line":42}"#)]);
    }

    #[test]
    fn mistral_in_both_forms() {
        let p = parse(
            ToolFormat::Mistral,
            "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"x\": \"y\"}, \"id\": \"abc123def\"}]",
            &[],
        );
        assert_eq!(p.calls, vec![call("f", r#"{"x":"y"}"#)]);
        let p = parse(ToolFormat::Mistral, "ok [TOOL_CALLS]f[ARGS]{\"x\": 1}[TOOL_CALLS]g[ARGS]{}", &[]);
        assert_eq!(p.content, "ok");
        assert_eq!(p.calls, vec![call("f", r#"{"x":1}"#), call("g", "{}")]);
    }

    #[test]
    fn nemotron_lists() {
        let p = parse(ToolFormat::Nemotron, "<TOOLCALL>[{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"a\": [1]}}]</TOOLCALL>", &[]);
        assert_eq!(p.calls, vec![call("f", "{}"), call("g", r#"{"a":[1]}"#)]);
    }

    #[test]
    fn llama3_bare_objects() {
        let p = parse(ToolFormat::Llama3, "{\"name\": \"f\", \"parameters\": {\"q\": \"x\"}}", &[]);
        assert_eq!(p.calls, vec![call("f", r#"{"q":"x"}"#)]);
        let p = parse(
            ToolFormat::Llama3,
            "<|python_tag|>{\"name\": \"f\", \"parameters\": {}};{\"name\": \"g\", \"parameters\": {}}",
            &[],
        );
        assert_eq!(p.calls.len(), 2);
        let p = parse(ToolFormat::Llama3, "Paris is sunny.", &[]);
        assert!(p.calls.is_empty() && p.content == "Paris is sunny.");
    }

    #[test]
    fn generic_json_answers() {
        let p = parse(ToolFormat::Generic, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": 1}}]}", &[]);
        assert_eq!(p.calls, vec![call("f", r#"{"a":1}"#)]);
        let p = parse(ToolFormat::Generic, "{\"response\": \"Hello!\"}", &[]);
        assert_eq!((p.content.as_str(), p.calls.len()), ("Hello!", 0));
        let p = parse(ToolFormat::Generic, "plain words", &[]);
        assert_eq!(p.content, "plain words");
    }
}
