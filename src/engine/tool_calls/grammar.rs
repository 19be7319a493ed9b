//! GBNF for tool calls: each function's JSON schema (through llama.cpp's converter) inside
//! the family's markers. A lazy grammar is handed the output from its trigger on, so every
//! grammar here starts with its family's trigger text.

use serde_json::{json, Value};

use super::ToolFormat;
use crate::engine::request::ToolSpec;

/// Calls in one answer, at most, where parallel calls are allowed.
const MAX_PARALLEL: usize = 8;

pub fn build(
    format: ToolFormat,
    tools: &[ToolSpec],
    parallel: bool,
    forced: bool,
    convert: &dyn Fn(&Value) -> Result<String, String>,
) -> Result<String, String> {
    let key = if format == ToolFormat::Llama3 { "parameters" } else { "arguments" };
    let calls: Vec<Value> = tools.iter().map(|t| call_schema(t, key)).collect();
    if format == ToolFormat::Generic {
        return convert(&generic_schema(calls, parallel, forced));
    }
    if format == ToolFormat::QwenXml {
        return Ok(xml(tools, parallel));
    }
    let call = convert(&json!({"anyOf": calls}))?;
    let call = rename_root(&call, "tc-call");
    let list = if parallel {
        r#""[" tc-ws tc-call (tc-ws "," tc-ws tc-call){0,7} tc-ws "]""#
    } else {
        r#""[" tc-ws tc-call tc-ws "]""#
    };
    if format == ToolFormat::Hermes {
        return Ok(hermes(&call, parallel));
    }
    let one = match format {
        ToolFormat::Mistral => format!(r#""[TOOL_CALLS]" tc-ws {list}"#),
        ToolFormat::Nemotron => format!(r#""<TOOLCALL>" tc-ws {list} tc-ws "</TOOLCALL>""#),
        _ => "tc-call".to_string(),
    };
    Ok(format!("root ::= tc-one\ntc-one ::= {one}\ntc-ws ::= [ \\t\\n]{{0,4}}\n{call}"))
}

/// `<tool_call>` blocks, or what small Qwen coders write instead: calls fenced as ```json,
/// or one bare (its braces doubled, as the 1.5B's template shows it); the leading
/// whitespace is the trigger pattern's.
fn hermes(call: &str, parallel: bool) -> String {
    let more = |rule: &str| if parallel { format!("{rule} (tc-ws {rule}){{0,7}}") } else { rule.to_string() };
    let (tagged, fenced) = (more("tc-tagged"), more("tc-fenced"));
    format!(
        "root ::= tc-ws ({tagged} | {fenced} | tc-call | \"{{\" tc-call \"}}\")\n\
         tc-tagged ::= \"<tool_call>\" tc-ws tc-call tc-ws \"</tool_call>\"\n\
         tc-fenced ::= (\"```json\" | \"```\") tc-ws tc-call tc-ws \"```\"\n\
         tc-ws ::= [ \\t\\n]{{0,4}}\n{call}"
    )
}

/// `{"name": NAME, KEY: parameters}`, both required.
fn call_schema(tool: &ToolSpec, key: &str) -> Value {
    let parameters = match &tool.parameters {
        Value::Object(m) if !m.is_empty() => tool.parameters.clone(),
        _ => json!({"type": "object"}),
    };
    json!({
        "type": "object",
        "properties": {"name": {"const": tool.name}, key: parameters},
        "required": ["name", key],
    })
}

/// The whole answer: `{"tool_calls": [...]}`, or (unless a call is required)
/// `{"response": "..."}`.
fn generic_schema(calls: Vec<Value>, parallel: bool, forced: bool) -> Value {
    let max = if parallel { MAX_PARALLEL } else { 1 };
    let call = json!({
        "type": "object",
        "properties": {"tool_calls": {"type": "array", "items": {"anyOf": calls}, "minItems": 1, "maxItems": max}},
        "required": ["tool_calls"],
    });
    if forced {
        return call;
    }
    let answer = json!({"type": "object", "properties": {"response": {"type": "string"}}, "required": ["response"]});
    json!({"anyOf": [call, answer]})
}

/// The converter names its start rule `root`; inside a larger grammar it becomes `name`.
fn rename_root(gbnf: &str, name: &str) -> String {
    gbnf.lines()
        .map(|line| match line.strip_prefix("root ::=") {
            Some(rest) => format!("{name} ::={rest}"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Qwen3-Coder's XML calls: the function and parameter names are held to the tools';
/// values are free text without `<`.
fn xml(tools: &[ToolSpec], parallel: bool) -> String {
    let mut rules = vec![
        format!("root ::= tc-one{}", if parallel { " (tc-ws tc-one){0,7}" } else { "" }),
        r#"tc-one ::= "<tool_call>" tc-ws "<function=" tc-fn tc-ws "</function>" tc-ws "</tool_call>""#.to_string(),
        "tc-ws ::= [ \\t\\n]{0,4}".to_string(),
        "tc-value ::= [^<]*".to_string(),
    ];
    let mut functions = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        functions.push(format!("tc-fn-{i}"));
        let params: Vec<String> = tool
            .parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(|k| literal(k)).collect())
            .unwrap_or_default();
        let body = if params.is_empty() {
            String::new()
        } else {
            rules.push(format!(r#"tc-p-{i} ::= "<parameter=" ({}) ">" tc-value "</parameter>""#, params.join(" | ")));
            format!(" (tc-p-{i} tc-ws)*")
        };
        rules.push(format!(r#"tc-fn-{i} ::= {} ">" tc-ws{body}"#, literal(&tool.name)));
    }
    rules.push(format!("tc-fn ::= {}", functions.join(" | ")));
    rules.join("\n")
}

/// A GBNF string literal.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: None,
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    fn fake_convert(schema: &Value) -> Result<String, String> {
        Ok(format!("root ::= \"{}\"\nspace ::= \" \"?", schema.to_string().len()))
    }

    #[test]
    fn hermes_wraps_the_calls_in_its_tags_and_starts_with_the_trigger() {
        let g = build(ToolFormat::Hermes, &[tool("a"), tool("b")], true, false, &fake_convert).unwrap();
        assert!(
            g.starts_with(
                "root ::= tc-ws (tc-tagged (tc-ws tc-tagged){0,7} | tc-fenced (tc-ws tc-fenced){0,7} | tc-call | \"{\" tc-call \"}\")\n"
            ),
            "{g}"
        );
        assert!(g.contains("tc-tagged ::= \"<tool_call>\" tc-ws tc-call tc-ws \"</tool_call>\""), "{g}");
        assert!(g.contains("\ntc-call ::= \"") && !g.contains("\nroot ::= \""), "{g}");
        let single = build(ToolFormat::Hermes, &[tool("a")], false, false, &fake_convert).unwrap();
        assert!(single.starts_with("root ::= tc-ws (tc-tagged | tc-fenced | tc-call | \"{\" tc-call \"}\")\n"));
    }

    #[test]
    fn each_family_gets_its_markers() {
        let m = build(ToolFormat::Mistral, &[tool("a")], false, false, &fake_convert).unwrap();
        assert!(m.contains(r#"tc-one ::= "[TOOL_CALLS]" tc-ws "[" tc-ws tc-call tc-ws "]""#), "{m}");
        let n = build(ToolFormat::Nemotron, &[tool("a")], true, false, &fake_convert).unwrap();
        assert!(n.contains(r#""<TOOLCALL>""#) && n.contains(r#""</TOOLCALL>""#));
        let x = build(ToolFormat::QwenXml, &[tool("edit")], false, false, &fake_convert).unwrap();
        assert!(x.contains(r#"tc-fn-0 ::= "edit" ">""#) && x.contains(r#"("city")"#), "{x}");
    }

    #[test]
    fn the_call_schema_names_the_function_and_requires_its_arguments() {
        let s = call_schema(&tool("get_weather"), "arguments");
        assert_eq!(s["properties"]["name"]["const"], "get_weather");
        assert_eq!(s["required"], json!(["name", "arguments"]));
        let empty = ToolSpec { name: "now".into(), description: None, parameters: json!({}) };
        assert_eq!(call_schema(&empty, "parameters")["properties"]["parameters"], json!({"type": "object"}));
    }

    #[test]
    fn the_generic_form_allows_an_answer_unless_a_call_is_required() {
        let calls = vec![call_schema(&tool("a"), "arguments")];
        assert_eq!(generic_schema(calls.clone(), false, false)["anyOf"].as_array().unwrap().len(), 2);
        let forced = generic_schema(calls, true, true);
        assert_eq!(forced["properties"]["tool_calls"]["maxItems"], MAX_PARALLEL);
    }
}
