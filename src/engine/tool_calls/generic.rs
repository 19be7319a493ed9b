//! Tools for a template that knows none: quorum describes them in the system message and
//! asks for llama.cpp's generic JSON answer; earlier calls and results become text.

use serde_json::{json, Value};

use crate::engine::request::{ChatMessage, ToolSpec};

/// Assistant calls as the JSON the model is asked to write, tool results as user turns.
pub fn flatten(messages: &[ChatMessage]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|m| {
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let arguments = serde_json::from_str::<Value>(&c.arguments).unwrap_or(json!(c.arguments));
                        json!({"name": c.name, "arguments": arguments})
                    })
                    .collect();
                ChatMessage::new(&m.role, json!({"tool_calls": calls}).to_string())
            } else if m.role == "tool" {
                let response = json!({"tool_response": {"tool": m.name, "id": m.tool_call_id, "content": m.content}});
                ChatMessage::new("user", response.to_string())
            } else {
                ChatMessage::new(&m.role, &m.content)
            }
        })
        .collect()
}

/// Puts the tools and the answer format at the head of the system message.
pub fn describe(messages: &mut Vec<ChatMessage>, tools: &[ToolSpec], parallel: bool) {
    let list: Vec<String> = tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}).to_string())
        .collect();
    let calls = if parallel { "one or more calls" } else { "one call" };
    let text = format!(
        "You can call these tools:\n{}\n\nAnswer in JSON only. To call tools ({calls}): \
         {{\"tool_calls\": [{{\"name\": \"<tool name>\", \"arguments\": {{...}}}}]}}. \
         To answer the user directly: {{\"response\": \"<your answer>\"}}.",
        list.join("\n")
    );
    match messages.first_mut() {
        Some(first) if first.role == "system" => first.content = format!("{}\n\n{text}", first.content),
        _ => messages.insert(0, ChatMessage::new("system", text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::request::ToolCall;

    #[test]
    fn calls_and_results_become_text_turns() {
        let call = ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() };
        let messages = vec![
            ChatMessage { role: "assistant".into(), tool_calls: vec![call], ..ChatMessage::default() },
            ChatMessage {
                role: "tool".into(),
                content: "42".into(),
                tool_call_id: Some("call_1".into()),
                ..ChatMessage::default()
            },
        ];
        let flat = flatten(&messages);
        assert_eq!(flat[0].content, r#"{"tool_calls":[{"name":"f","arguments":{"a":1}}]}"#);
        assert_eq!(flat[1].role, "user");
        assert!(flat[1].content.contains("\"content\":\"42\""));
    }

    #[test]
    fn the_tools_join_an_existing_system_message() {
        let tool = ToolSpec { name: "f".into(), description: None, parameters: json!({"type": "object"}) };
        let mut messages = vec![ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "hi")];
        describe(&mut messages, &[tool], false);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].content.starts_with("Be brief.\n\nYou can call these tools:\n{\"name\":\"f\""));
    }
}
