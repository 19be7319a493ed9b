//! One validated [`Config`] from the built-in profile, an optional TOML file and flags,
//! applied in that order (later wins).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::models::{ModelSource, Profile, Role};
use crate::state::{StateError, StateLocation};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Profile(#[from] crate::models::UnknownProfile),
    #[error("invalid --model `{0}`: expected ROLE=PATH or ROLE=hf:OWNER/REPO/FILE.gguf (ROLE may be `all`)")]
    ModelFlag(String),
    #[error(transparent)]
    Role(#[from] crate::models::UnknownRole),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("role {role}: {message}")]
    Invalid { role: Role, message: String },
    #[error("{0}")]
    Alias(String),
}

/// What a config file or flag may change for one role.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleOverride {
    /// A path, or `hf:OWNER/REPO/FILE.gguf[@SHA256]`.
    pub model: Option<String>,
    pub context: Option<u32>,
    pub chat_template: Option<String>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub parallel: Option<u32>,
    /// The draft model for speculation (a path or `hf:...`); `""` for none. A role whose
    /// `model` is changed loses the profile's draft unless this names one.
    pub draft: Option<String>,
    /// The model's vision projector (an `mmproj` GGUF, a path or `hf:...`); `""` for none.
    /// A role whose `model` is changed loses the profile's projector unless this names one.
    pub mmproj: Option<String>,
}

/// The TOML file, as written by a user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub profile: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
    pub threads: Option<u32>,
    pub queue: Option<usize>,
    pub prompt_cache: Option<bool>,
    pub flash_attention: Option<bool>,
    pub kv_unified: Option<bool>,
    pub concurrent_decodes: Option<bool>,
    pub speculation: Option<Speculative>,
    /// A Whisper directory (Hugging Face safetensors or CTranslate2 layout) for speech;
    /// default: the profile's in the models directory.
    pub speech_model: Option<PathBuf>,
    /// The state store: a redb file path or `redis://HOST:PORT/DB`.
    pub state: Option<String>,
    /// The code the tools work on (default: the current directory).
    pub workspace: Option<PathBuf>,
    /// Roots under which a request may name another workspace (`~/src`); the default
    /// workspace is always allowed, anything else refused.
    #[serde(default)]
    pub workspaces: Vec<PathBuf>,
    /// A directory of `ROLE.md` files that replace the built-in prompts.
    pub prompts: Option<PathBuf>,
    /// A file of API keys, one a line (`#` comments); with keys, every route but /health
    /// needs one.
    pub api_key_file: Option<PathBuf>,
    /// Browser origins allowed besides loopback ones, e.g. `["http://192.168.1.5:3000"]`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most bytes of a request body (default 8 MiB); larger ones get 413.
    pub max_body_bytes: Option<usize>,
    /// `[pipeline]`: defaults for the pipeline's options (candidates, k, max_rounds, ...),
    /// checked when the server starts.
    pub pipeline: Option<serde_json::Value>,
    #[serde(default)]
    pub roles: BTreeMap<Role, RoleOverride>,
    /// `[aliases]`: model names clients send (`"claude-*"`, `"gpt-4o"`) to a role or
    /// `quorum`; `*` matches any text.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Whether `image_url` may name an http(s) URL that the server fetches (default: no;
    /// a request could otherwise make the server reach any host it can).
    #[serde(default)]
    pub allow_remote_images: bool,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }

    /// The state location: the flag, else the file's `state`, else the default file.
    pub fn state_location(&self, flag: Option<&str>) -> Result<StateLocation, ConfigError> {
        match flag.or(self.state.as_deref()) {
            Some(s) => Ok(s.parse()?),
            None => Ok(StateLocation::default_file()),
        }
    }
}

/// Flags that override the file (all optional).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub profile: Option<String>,
    pub models_dir: Option<PathBuf>,
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
    pub threads: Option<u32>,
    pub state: Option<String>,
    pub workspace: Option<PathBuf>,
    /// `ROLE=SPEC` pairs; `all=SPEC` sets every role.
    pub models: Vec<String>,
}

/// Engine sizing shared by every role.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Threads each decode uses. Decodes of different models take turns on a CPU, so
    /// every worker may use all of them.
    pub threads: u32,
    /// Whether decodes of different models run at once; None: where llama.cpp offloads to
    /// a GPU (CUDA, Metal), and not on a CPU, where they take turns.
    pub concurrent_decodes: Option<bool>,
    /// Requests that may wait for a model before new ones are refused (HTTP 429).
    pub queue: usize,
    /// Keep finished prompts' KV for requests that share their prefix.
    pub prompt_cache: bool,
    /// llama.cpp's flash attention (auto).
    pub flash_attention: bool,
    /// One KV pool for all sequences of a model (default; forks store their prompt
    /// once), or a stream per sequence. With flash attention off, split streams make a
    /// request's greedy output independent of what else runs beside it; in a unified pool
    /// the interleaving of cells changes floating-point summation order.
    pub kv_unified: bool,
    pub speculation: Speculative,
}

/// Speculative decoding: how drafts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speculative {
    /// None: one token per sequence and step.
    Off,
    /// From the sequence's own prompt and output (prompt lookup).
    Lookup,
    /// Prompt lookup, and where it finds nothing, the role's draft model (a smaller model
    /// of the same vocabulary).
    Draft,
    /// `lookup`: on a CPU and on a GPU alike, the draft model's own decodes, one token at a
    /// time, cost more than they save, and prompt lookup pays (`benches/RESULTS.md`).
    #[default]
    Auto,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    pub models_dir: PathBuf,
    /// Where the Whisper model is (None: the profile has none).
    pub speech_model: Option<PathBuf>,
    pub host: IpAddr,
    pub port: u16,
    pub state: StateLocation,
    pub workspace: PathBuf,
    pub workspaces: Vec<PathBuf>,
    pub prompts: Option<PathBuf>,
    /// The `[pipeline]` table as written (the pipeline validates it).
    pub pipeline: serde_json::Value,
    pub engine: EngineConfig,
    pub access: AccessConfig,
    /// Model-name patterns and the model id each stands for, in the file's order.
    pub aliases: Vec<(String, String)>,
    pub allow_remote_images: bool,
}

/// Who may use the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessConfig {
    /// Accepted API keys (none: no key needed).
    pub api_keys: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: Option<usize>,
}

impl AccessConfig {
    /// Adds keys (given, and read from a file of one key a line) and origins.
    pub fn add(&mut self, keys: &[String], key_file: Option<&Path>, origins: &[String]) -> Result<(), ConfigError> {
        self.api_keys.extend(keys.iter().map(|k| k.trim().to_string()));
        if let Some(path) = key_file {
            self.api_keys.extend(read_keys(path)?);
        }
        self.api_keys.retain(|k| !k.is_empty());
        self.allowed_origins.extend(origins.iter().cloned());
        Ok(())
    }
}

pub const DEFAULT_PORT: u16 = 8080;

impl Config {
    pub fn resolve(file: ConfigFile, flags: Overrides) -> Result<Config, ConfigError> {
        let state = file.state_location(flags.state.as_deref())?;
        let profile_name = flags.profile.or(file.profile).unwrap_or_else(|| "small".into());
        let mut profile = Profile::builtin(&profile_name)?;
        for (role, o) in &file.roles {
            apply(&mut profile, *role, o)?;
        }
        for flag in &flags.models {
            let (role, spec) = flag.split_once('=').ok_or_else(|| ConfigError::ModelFlag(flag.clone()))?;
            let o = RoleOverride { model: Some(spec.to_string()), ..Default::default() };
            if role == "all" {
                for r in Role::ALL {
                    apply(&mut profile, r, &o)?;
                }
            } else {
                apply(&mut profile, role.parse()?, &o)?;
            }
        }
        let mut access = AccessConfig { max_body_bytes: file.max_body_bytes, ..Default::default() };
        access.add(&[], file.api_key_file.as_deref(), &file.allowed_origins)?;
        let default_threads = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(4);
        let models_dir = flags.models_dir.or(file.models_dir).unwrap_or_else(default_models_dir);
        let speech_model = file.speech_model.or_else(|| profile.speech.as_ref().map(|s| models_dir.join(&s.dir)));
        Ok(Config {
            profile,
            models_dir,
            speech_model,
            host: flags.host.or(file.host).unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: flags.port.or(file.port).unwrap_or(DEFAULT_PORT),
            state,
            workspace: flags.workspace.or(file.workspace).unwrap_or_else(|| ".".into()),
            workspaces: file.workspaces,
            prompts: file.prompts.or_else(|| std::env::var_os("QUORUM_PROMPTS").map(PathBuf::from)),
            pipeline: file.pipeline.unwrap_or(serde_json::Value::Null),
            engine: EngineConfig {
                threads: flags.threads.or(file.threads).unwrap_or(default_threads).max(1),
                queue: file.queue.unwrap_or(64).max(1),
                prompt_cache: file.prompt_cache.unwrap_or(true),
                flash_attention: file.flash_attention.unwrap_or(true),
                kv_unified: file.kv_unified.unwrap_or(true),
                concurrent_decodes: file.concurrent_decodes,
                speculation: file.speculation.unwrap_or_default(),
            },
            access,
            aliases: aliases(file.aliases)?,
            allow_remote_images: file.allow_remote_images,
        })
    }
}

/// Checks that every alias stands for a role or the pipeline.
fn aliases(table: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ConfigError> {
    table
        .into_iter()
        .map(|(pattern, target)| {
            let known = target == "quorum" || target.starts_with("quorum@") || target.parse::<Role>().is_ok();
            if known && !pattern.is_empty() {
                Ok((pattern, target))
            } else {
                Err(ConfigError::Alias(format!(
                    "alias `{pattern}` = `{target}`: an alias stands for a role (coder, planner, ...) or `quorum`"
                )))
            }
        })
        .collect()
}

/// Where models live unless the config or `--models-dir` says otherwise: quorum's cache
/// (`$QUORUM_CACHE/models`, else `~/.cache/quorum/models`), which `models pull` and
/// `scripts/fetch-small-models.sh` fill, so a server finds them from any directory.
pub fn default_models_dir() -> PathBuf {
    let cache = std::env::var_os("QUORUM_CACHE")
        .map(PathBuf::from)
        // The setup scripts' directory on every system (not the platform's cache dir).
        .or_else(|| dirs::home_dir().map(|d| d.join(".cache/quorum")))
        .unwrap_or_else(|| PathBuf::from(".quorum"));
    cache.join("models")
}

/// Keys from a file: one a line, blank lines and `#` comments skipped.
fn read_keys(path: &Path) -> Result<Vec<String>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

fn apply(profile: &mut Profile, role: Role, o: &RoleOverride) -> Result<(), ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid { role, message: message.to_string() };
    let spec = profile.roles.get_mut(&role).expect("profiles define every role");
    if let Some(model) = &o.model {
        spec.source = ModelSource::parse_cli(model);
        // The profile's draft and projector were paired with the profile's model.
        spec.draft = None;
        spec.mmproj = None;
    }
    if let Some(draft) = &o.draft {
        spec.draft = (!draft.is_empty()).then(|| ModelSource::parse_cli(draft));
    }
    if let Some(mmproj) = &o.mmproj {
        spec.mmproj = (!mmproj.is_empty()).then(|| ModelSource::parse_cli(mmproj));
    }
    if let Some(context) = o.context {
        if context < 64 {
            return Err(invalid("context must be at least 64 tokens"));
        }
        spec.context = context;
    }
    if let Some(t) = &o.chat_template {
        spec.chat_template = Some(t.clone());
    }
    if let Some(t) = o.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(invalid("temperature must be between 0 and 2"));
        }
        spec.sampling.temperature = t;
    }
    if let Some(p) = o.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(invalid("top_p must be in (0, 1]"));
        }
        spec.sampling.top_p = p;
    }
    if let Some(p) = o.parallel {
        if !(1..=64).contains(&p) {
            return Err(invalid("parallel must be between 1 and 64"));
        }
        spec.parallel = p;
    }
    if let Some(m) = o.max_tokens {
        spec.sampling.max_tokens = m.max(1);
    }
    Ok(())
}
