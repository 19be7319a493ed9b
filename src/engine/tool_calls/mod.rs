//! Tool calling, which llama-cpp-2 no longer does for us: how a model family writes calls
//! (read from its chat template), the prompt with the tools in it, a grammar that holds
//! the calls to the functions' schemas, and a parser that takes the calls back out.

mod generic;
mod grammar;
mod parse;

use super::request::{ChatMessage, ToolChoice, ToolRequest, ToolSpec};

pub use parse::{Parsed, ParsedCall};

/// How a model family writes its tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// Hermes and Qwen2.5: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.
    Hermes,
    /// Qwen3-Coder: `<tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>`.
    QwenXml,
    /// Mistral and Devstral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}]`, or
    /// `[TOOL_CALLS]NAME[ARGS]{...}` in the newer templates.
    Mistral,
    /// Nemotron: `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>`.
    Nemotron,
    /// Llama 3.x: a bare `{"name": ..., "parameters": {...}}`.
    Llama3,
    /// Models with no tool format (Gemma 3, SmolLM2): the whole answer is JSON, either
    /// `{"tool_calls": [...]}` or `{"response": "..."}`, as llama.cpp's generic handler asks.
    Generic,
}

impl ToolFormat {
    /// The family a chat template was trained on, from the markers it writes.
    pub fn detect(template: Option<&str>) -> ToolFormat {
        let Some(t) = template else { return ToolFormat::Generic };
        if !t.contains("tool") {
            ToolFormat::Generic
        } else if t.contains("<function=") && t.contains("<tool_call>") {
            ToolFormat::QwenXml
        } else if t.contains("<tool_call>") {
            ToolFormat::Hermes
        } else if t.contains("[TOOL_CALLS]") {
            ToolFormat::Mistral
        } else if t.contains("<TOOLCALL>") {
            ToolFormat::Nemotron
        } else if t.contains("<|start_header_id|>") && t.contains("parameters") {
            ToolFormat::Llama3
        } else {
            ToolFormat::Generic
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ToolFormat::Hermes => "hermes",
            ToolFormat::QwenXml => "qwen3-coder-xml",
            ToolFormat::Mistral => "mistral",
            ToolFormat::Nemotron => "nemotron",
            ToolFormat::Llama3 => "llama3-json",
            ToolFormat::Generic => "generic-json",
        }
    }

    /// The marker that opens a call in the output.
    fn marker(self) -> Option<&'static str> {
        match self {
            ToolFormat::Hermes | ToolFormat::QwenXml => Some("<tool_call>"),
            ToolFormat::Mistral => Some("[TOOL_CALLS]"),
            ToolFormat::Nemotron => Some("<TOOLCALL>"),
            ToolFormat::Llama3 => Some("{\"name\""),
            ToolFormat::Generic => None,
        }
    }

    /// Where a call starts in the output, as llama.cpp's trigger patterns: the marker
    /// anywhere and, for Hermes, the fenced or bare call object at the very start that
    /// small Qwen coders write instead (llama.cpp accepts the same forms).
    fn triggers(self, tools: &[ToolSpec]) -> Vec<String> {
        let mut patterns: Vec<String> = self.marker().map(regex_escape).into_iter().collect();
        if self == ToolFormat::Hermes {
            let names: Vec<String> = tools.iter().map(|t| regex_escape(&t.name)).collect();
            patterns.push(format!(
                "^(\\s*(?:```(?:json)?\\s*)?\\{{\\{{?\\s*\"name\"\\s*:\\s*\"(?:{})\")[\\s\\S]*$",
                names.join("|")
            ));
        }
        patterns
    }
}

/// A regex matching `text` literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A chat request's tools turned into what the engine needs: the prompt, the grammar
/// (lazy from `triggers` when not empty) and the parser of the answer.
#[derive(Debug)]
pub struct ToolPlan {
    pub messages: Vec<ChatMessage>,
    /// Tools for a template that writes them itself; empty when quorum wrote them into
    /// the system message (or the choice is `none`).
    pub template_tools: Vec<ToolSpec>,
    pub grammar: Option<String>,
    pub triggers: Vec<String>,
    pub parser: Option<ToolParser>,
}

impl ToolPlan {
    /// `knows_tools`: the template writes tools, calls and results itself.
    pub fn new(
        format: ToolFormat,
        knows_tools: bool,
        messages: &[ChatMessage],
        req: &ToolRequest,
        schema_grammar: &dyn Fn(&serde_json::Value) -> Result<String, String>,
    ) -> Result<ToolPlan, String> {
        let tools: Vec<ToolSpec> = match &req.choice {
            ToolChoice::Named(name) => {
                let tool = req
                    .tools
                    .iter()
                    .find(|t| &t.name == name)
                    .ok_or_else(|| format!("tool_choice names `{name}`, which is not among the tools"))?;
                vec![tool.clone()]
            }
            _ => req.tools.clone(),
        };
        let format = if knows_tools { format } else { ToolFormat::Generic };
        let mut messages = if knows_tools { messages.to_vec() } else { generic::flatten(messages) };
        if req.choice == ToolChoice::None || tools.is_empty() {
            return Ok(ToolPlan {
                messages,
                template_tools: Vec::new(),
                grammar: None,
                triggers: Vec::new(),
                parser: None,
            });
        }
        let forced = matches!(req.choice, ToolChoice::Required | ToolChoice::Named(_));
        let template_tools = if knows_tools {
            tools.clone()
        } else {
            generic::describe(&mut messages, &tools, req.parallel);
            Vec::new()
        };
        let grammar = if req.grammar {
            Some(grammar::build(format, &tools, req.parallel, forced, schema_grammar)?)
        } else {
            None
        };
        let triggers = if forced || grammar.is_none() { Vec::new() } else { format.triggers(&tools) };
        let parser = ToolParser { format, tools, parallel: req.parallel };
        Ok(ToolPlan { messages, template_tools, grammar, triggers, parser: Some(parser) })
    }
}

/// Takes calls out of an answer of one format.
#[derive(Debug, Clone)]
pub struct ToolParser {
    format: ToolFormat,
    tools: Vec<ToolSpec>,
    parallel: bool,
}

impl ToolParser {
    pub fn new(format: ToolFormat, tools: Vec<ToolSpec>, parallel: bool) -> ToolParser {
        ToolParser { format, tools, parallel }
    }

    pub fn format(&self) -> ToolFormat {
        self.format
    }

    /// Whether an answer may make more than one call.
    pub fn parallel(&self) -> bool {
        self.parallel
    }

    /// The answer's text and calls (at most one unless parallel calls were allowed).
    pub fn parse(&self, text: &str) -> Parsed {
        let mut parsed = parse::parse(self.format, text, &self.tools);
        if !self.parallel {
            parsed.calls.truncate(1);
        }
        parsed
    }

    /// How much of a streamed answer is surely text: up to where a call starts, or where
    /// a call might be starting (a trigger cut short at the end); nothing for formats
    /// whose whole answer is JSON.
    pub fn text_prefix(&self, text: &str) -> usize {
        let Some(marker) = self.format.marker() else { return 0 };
        if self.format == ToolFormat::Hermes && parse::may_open_bare_call(text) {
            return 0;
        }
        let mut end = text.find(marker).unwrap_or(text.len());
        // A suffix of the text that begins the marker.
        for (i, _) in text.char_indices().rev().take(marker.len()) {
            if marker.starts_with(&text[i..]) {
                end = end.min(i);
            }
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_read_from_the_template() {
        assert_eq!(ToolFormat::detect(Some("{% if tools %}<tool_call>{{ x }}</tool_call>")), ToolFormat::Hermes);
        assert_eq!(ToolFormat::detect(Some("tools <tool_call>\n<function=x>")), ToolFormat::QwenXml);
        assert_eq!(ToolFormat::detect(Some("tools [TOOL_CALLS] [AVAILABLE_TOOLS]")), ToolFormat::Mistral);
        assert_eq!(ToolFormat::detect(Some("tools <TOOLCALL>[...]</TOOLCALL>")), ToolFormat::Nemotron);
        assert_eq!(ToolFormat::detect(Some("tools <|start_header_id|>ipython \"parameters\": ")), ToolFormat::Llama3);
        assert_eq!(ToolFormat::detect(Some("{{'<|im_start|>' + message['content']}}")), ToolFormat::Generic);
        assert_eq!(ToolFormat::detect(None), ToolFormat::Generic);
    }

    fn parser(format: ToolFormat) -> ToolParser {
        ToolParser { format, tools: Vec::new(), parallel: true }
    }

    #[test]
    fn streamed_text_is_held_back_from_where_a_call_may_start() {
        let p = parser(ToolFormat::Hermes);
        assert_eq!(p.text_prefix("Sure, let me check."), 19);
        assert_eq!(p.text_prefix("Sure <tool_c"), 5);
        assert_eq!(p.text_prefix("Sure <tool_call>\n{\"na"), 5);
        assert_eq!(p.text_prefix("a < b"), 5);
        assert_eq!(p.text_prefix("```json\n{\"na"), 0, "the fenced call small Qwen coders write");
        assert_eq!(p.text_prefix("```python\nprint()"), 17);
        assert_eq!(parser(ToolFormat::Generic).text_prefix("{\"response\": \"hi\"}"), 0);
    }

    fn weather() -> ToolSpec {
        ToolSpec {
            name: "get_weather".into(),
            description: Some("Weather of a city".into()),
            parameters: serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }
    }

    fn plan(choice: ToolChoice, knows_tools: bool) -> Result<ToolPlan, String> {
        let req = ToolRequest { tools: vec![weather()], choice, parallel: false, grammar: true };
        let convert = |_: &serde_json::Value| Ok("root ::= \"{}\"".to_string());
        ToolPlan::new(ToolFormat::Hermes, knows_tools, &[ChatMessage::new("user", "Paris?")], &req, &convert)
    }

    #[test]
    fn auto_waits_for_the_trigger_and_forced_choices_constrain_from_the_start() {
        let auto = plan(ToolChoice::Auto, true).unwrap();
        assert_eq!(auto.triggers[0], "<tool_call>");
        assert_eq!(auto.triggers[1], r#"^(\s*(?:```(?:json)?\s*)?\{\{?\s*"name"\s*:\s*"(?:get_weather)")[\s\S]*$"#);
        assert_eq!(auto.template_tools.len(), 1);
        let required = plan(ToolChoice::Required, true).unwrap();
        assert!(required.triggers.is_empty() && required.grammar.is_some());
        let named = plan(ToolChoice::Named("get_weather".into()), true).unwrap();
        assert!(named.triggers.is_empty());
        assert!(plan(ToolChoice::Named("nope".into()), true).unwrap_err().contains("nope"));
        let none = plan(ToolChoice::None, true).unwrap();
        assert!(none.parser.is_none() && none.template_tools.is_empty() && none.grammar.is_none());
    }

    #[test]
    fn a_template_without_tools_gets_them_in_the_system_message() {
        let plan = plan(ToolChoice::Auto, false).unwrap();
        assert!(plan.template_tools.is_empty());
        assert_eq!(plan.parser.unwrap().format(), ToolFormat::Generic);
        assert_eq!(plan.messages[0].role, "system");
        assert!(plan.messages[0].content.contains("get_weather"));
        assert!(plan.triggers.is_empty(), "the generic form is JSON from the first token");
    }
}
