//! Chat templates: the GGUF's own Jinja `tokenizer.chat_template`, rendered as the model was
//! trained (tools, tool calls and tool results included); else a llama.cpp built-in by name
//! (for files without one, e.g. Gemma 270M), which knows plain text turns only.

mod jinja;

pub(crate) use jinja::now_utc;

use std::path::Path;

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use super::request::{ChatMessage, ToolSpec};
use super::EngineError;

pub use jinja::Jinja;

pub enum ChatTemplate {
    Jinja(Box<Jinja>),
    /// llama.cpp applies it, through the model it belongs to.
    Builtin(LlamaChatTemplate, &'static LlamaModel),
}

impl ChatTemplate {
    /// The file's own template, else the configured built-in. A Jinja template minijinja
    /// cannot parse falls back to llama.cpp's matcher, which recognises common templates.
    pub fn resolve(model: &'static LlamaModel, fallback: Option<&str>) -> Option<ChatTemplate> {
        if let Ok(source) = model.meta_val_str("tokenizer.chat_template") {
            let (bos, eos) = specials(model);
            match Jinja::new(source, bos, eos) {
                Ok(j) => return Some(ChatTemplate::Jinja(Box::new(j))),
                Err(e) => {
                    tracing::warn!(error = %e, "the GGUF's chat template is not usable Jinja; using llama.cpp's matcher")
                }
            }
        }
        model
            .chat_template(None)
            .ok()
            .or_else(|| fallback.and_then(|name| LlamaChatTemplate::new(name).ok()))
            .map(|t| ChatTemplate::Builtin(t, model))
    }

    /// The GGUF's own Jinja template, read from its vocabulary alone (no weights).
    pub fn from_gguf(path: &Path) -> Result<Option<ChatTemplate>, EngineError> {
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(super::backend::backend(), path, &params)
            .map_err(|e| EngineError::Load { path: path.to_path_buf(), message: e.to_string() })?;
        let Ok(source) = model.meta_val_str("tokenizer.chat_template") else { return Ok(None) };
        let (bos, eos) = specials(&model);
        Jinja::new(source, bos, eos).map(|j| Some(ChatTemplate::Jinja(Box::new(j)))).map_err(EngineError::Template)
    }

    /// The Jinja source, which says how the model calls tools.
    pub fn source(&self) -> Option<&str> {
        match self {
            ChatTemplate::Jinja(j) => Some(j.source()),
            ChatTemplate::Builtin(..) => None,
        }
    }

    /// Whether the template writes `tools`, assistant `tool_calls` and `tool` turns itself.
    pub fn knows_tools(&self) -> bool {
        self.source().is_some_and(|s| s.contains("tools") && s.contains("tool_call"))
    }

    /// Renders `messages` (and `tools`, where the template writes them), ending with the
    /// assistant's turn opened when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        match self {
            ChatTemplate::Jinja(j) => j.render(messages, tools, add_generation_prompt).map_err(EngineError::Template),
            ChatTemplate::Builtin(template, model) => {
                let messages = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| EngineError::InvalidPrompt(e.to_string()))?;
                model
                    .apply_chat_template(template, &messages, add_generation_prompt)
                    .map_err(|e| EngineError::Template(e.to_string()))
            }
        }
    }
}

/// The BOS and EOS texts templates write as `bos_token` and `eos_token`.
fn specials(model: &LlamaModel) -> (String, String) {
    let vocab = model.vocab();
    let piece = |t| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    (piece(vocab.bos()), piece(vocab.eos()))
}
