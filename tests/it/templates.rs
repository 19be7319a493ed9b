//! Every GGUF's own chat template rendered by quorum equals what Hugging Face transformers
//! renders from it (the known-good prompts in fixtures/templates, made by render.py there).

use std::path::{Path, PathBuf};

use quorum::engine::{ChatMessage, ChatTemplate, ToolCall, ToolSpec};
use serde_json::Value;

use super::support::repo_root;

fn fixtures() -> PathBuf {
    repo_root().join("tests/it/fixtures/templates")
}

fn messages(conv: &Value) -> Vec<ChatMessage> {
    conv["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| ChatMessage {
            role: m["role"].as_str().unwrap().into(),
            content: m["content"].as_str().unwrap_or_default().into(),
            tool_calls: m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| ToolCall {
                    id: c["id"].as_str().unwrap().into(),
                    name: c["function"]["name"].as_str().unwrap().into(),
                    arguments: c["function"]["arguments"].to_string(),
                })
                .collect(),
            tool_call_id: m["tool_call_id"].as_str().map(Into::into),
            name: m["name"].as_str().map(Into::into),
        })
        .collect()
}

fn tools(conv: &Value) -> Vec<ToolSpec> {
    conv["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| ToolSpec {
            name: t["function"]["name"].as_str().unwrap().into(),
            description: t["function"]["description"].as_str().map(Into::into),
            parameters: t["function"]["parameters"].clone(),
        })
        .collect()
}

fn model_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_gguf_template_renders_as_transformers_renders_it() {
    let conversations: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("conversations.json")).unwrap()).unwrap();
    let mut compared = 0;
    for path in model_files() {
        let Some(template) = ChatTemplate::from_gguf(&path).unwrap() else { continue };
        assert!(template.source().is_some(), "{}: its own template is Jinja", stem(&path));
        for (case, conv) in &conversations {
            let expected = fixtures().join(format!("{}.{case}.txt", stem(&path)));
            let expected = std::fs::read_to_string(&expected)
                .unwrap_or_else(|e| panic!("{}: {e}; run render.py", expected.display()));
            let rendered = template.render(&messages(conv), &tools(conv), true).unwrap();
            assert_eq!(rendered, expected, "{} / {case}", stem(&path));
            compared += 1;
        }
    }
    assert!(compared >= 12, "three GGUFs with templates, four conversations each; compared {compared}");
}
