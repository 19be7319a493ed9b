//! What a role needs to run: where its GGUF comes from and how to sample from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a GGUF file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelSource {
    /// A file in a Hugging Face model repository, verified against `sha256` when given
    /// (otherwise against the hub's LFS etag, which is the file's sha256).
    Hub {
        repo: String,
        file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// A file already on disk.
    Local { path: PathBuf },
}

impl ModelSource {
    /// The file name the model is known by (in `models/` and in logs).
    pub fn file_name(&self) -> String {
        match self {
            ModelSource::Hub { file, .. } => file.rsplit('/').next().unwrap_or(file).to_string(),
            ModelSource::Local { path } => {
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
            }
        }
    }

    /// Parses a command-line model spec: `hf:OWNER/REPO/FILE.gguf[@SHA256]` or a path.
    pub fn parse_cli(spec: &str) -> ModelSource {
        if let Some(rest) = spec.strip_prefix("hf:") {
            let (rest, sha256) = match rest.split_once('@') {
                Some((r, sha)) => (r, Some(sha.to_ascii_lowercase())),
                None => (rest, None),
            };
            let mut parts = rest.splitn(3, '/');
            if let (Some(owner), Some(name), Some(file)) = (parts.next(), parts.next(), parts.next()) {
                return ModelSource::Hub { repo: format!("{owner}/{name}"), file: file.to_string(), sha256 };
            }
        }
        ModelSource::Local { path: PathBuf::from(spec) }
    }
}

/// Sampling defaults of a role, used where a request does not say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingDefaults {
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
}

impl Default for SamplingDefaults {
    fn default() -> Self {
        SamplingDefaults { temperature: 0.7, top_p: 0.95, max_tokens: 512 }
    }
}

/// Everything needed to load and run one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub source: ModelSource,
    /// Context size in tokens, shared by the role's parallel sequences.
    pub context: u32,
    /// Sequences the role may run at once (samples of one request, or requests).
    pub parallel: u32,
    /// llama.cpp built-in chat template used when the GGUF carries none (e.g. `gemma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    pub sampling: SamplingDefaults,
    /// A smaller model of the same vocabulary that drafts tokens for this one
    /// (speculative decoding); checked for its vocabulary at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<ModelSource>,
    /// A vision projector (llama.cpp's `mmproj` GGUF) for this role's model: images it is
    /// shown go through it instead of OCR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmproj: Option<ModelSource>,
}
