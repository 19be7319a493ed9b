//! Chat templates: the one in the GGUF, else a named llama.cpp built-in (e.g. `gemma`).

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use super::request::ChatMessage;
use super::EngineError;

/// Picks the template for a model: the file's own, or the configured fallback name.
pub fn resolve(model: &LlamaModel, fallback: Option<&str>) -> Option<LlamaChatTemplate> {
    match model.chat_template(None) {
        Ok(t) => Some(t),
        Err(_) => fallback.and_then(|name| LlamaChatTemplate::new(name).ok()),
    }
}

/// Renders `messages` with the generation prompt for the assistant's turn appended.
pub fn apply(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    messages: &[ChatMessage],
) -> Result<String, EngineError> {
    let template = template.ok_or(EngineError::NoChatTemplate)?;
    let messages = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| EngineError::InvalidPrompt(e.to_string()))?;
    model.apply_chat_template(template, &messages, true).map_err(|e| EngineError::Template(e.to_string()))
}
