//! The only code that touches llama.cpp (through `llama-cpp-2`).
//!
//! [`Engine::load`] maps every role's GGUF into the process once per distinct file and
//! starts one worker thread per file, which serves all the roles on it from one context
//! with continuous batching (see `scheduler`). It hands out cheap [`RoleHandle`]s: a
//! handle validates and tokenizes a request on the caller's thread, then queues it on
//! the model's bounded channel; the worker streams [`Event`]s back.

mod backend;
mod draft;
mod guard;
mod metrics;
pub mod pick;
mod request;
mod sampling;
mod scheduler;
mod speculate;
mod template;
mod text;
mod tool_calls;
mod vision;
mod worker;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::config::{EngineConfig, Speculative};
use crate::models::{ModelFile, Profile, Role, RoleSpec};

pub use guard::{check_grammar, check_schema, Limits as GrammarLimits, Refusal};
pub use metrics::{MetricsSnapshot, ModelMetrics};
pub use request::{
    ChatMessage, Completion, Event, FinishReason, GenerateRequest, Generation, Prompt, SamplingParams, Speculation,
    ToolCall, ToolChoice, ToolRequest, ToolSpec,
};
/// The civil date and time (UTC), as chat templates and spec-kit documents print it.
pub(crate) use template::now_utc;
pub use template::ChatTemplate;
pub use text::{Scan, StopMatcher, Utf8Stream};
pub use tool_calls::{Parsed, ParsedCall, ToolFormat, ToolParser};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load model {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error(
        "{} cannot draft for {model}: {message}; the draft model must have the served model's vocabulary \
         (set the role's `draft` to another model, or `draft = \"\"` for none)",
        draft.display()
    )]
    Draft { model: String, draft: PathBuf, message: String },
    #[error("cannot create a context for role {role}: {message}")]
    Context { role: Role, message: String },
    #[error(
        "this model has no chat template; set one for the role in the config, e.g. \
         `chat_template = \"chatml\"` (llama.cpp built-in names: chatml, gemma, llama3, mistral-v7, ...)"
    )]
    NoChatTemplate,
    #[error("chat template failed: {0}")]
    Template(String),
    #[error("invalid prompt: {0}")]
    InvalidPrompt(String),
    #[error(
        "this model's maximum context length is {n_ctx} tokens, but the prompt has {prompt_tokens} \
         tokens; shorten the prompt{}",
        if *.n > 1 { " or ask for fewer samples (n)" } else { "" }
    )]
    ContextLength { prompt_tokens: usize, n_ctx: u32, n: u32 },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Samples(String),
    /// A grammar (or the grammar of a JSON schema) that was refused or did not compile.
    #[error("invalid grammar: {0}")]
    Grammar(String),
    #[error("{0}")]
    Schema(String),
    #[error("the {0} model has no fill-in-the-middle tokens; use a code model with FIM (e.g. Qwen2.5-Coder) for `suffix` and /infill")]
    NoFim(Role),
    /// Tools or a tool choice that cannot be served.
    #[error("{0}")]
    Tools(String),
    #[error("role {0} has too many queued requests; retry shortly")]
    Overloaded(Role),
    #[error("the model worker stopped")]
    WorkerGone,
    #[error("decoding failed: {0}")]
    Decode(String),
    #[error("{0}; the model is restarting, retry shortly")]
    Recovering(String),
}

/// A loaded GGUF and the roles it serves.
#[derive(Clone)]
pub struct ModelInfo {
    pub name: String,
    pub path: PathBuf,
    pub roles: Vec<Role>,
    pub metrics: Arc<ModelMetrics>,
}

/// Progress of [`Engine::load`], for logs, progress bars and `/health`.
#[derive(Debug, Clone)]
pub enum LoadEvent {
    Loading { model: String, roles: Vec<Role> },
    Ready { role: Role, model: String },
}

/// All loaded models and a handle per role.
pub struct Engine {
    models: Vec<ModelInfo>,
    roles: BTreeMap<Role, RoleHandle>,
}

impl Engine {
    /// Loads every file once (mmap) and starts one worker per file, serving all the
    /// roles on it from one context. Blocking: call it from a blocking thread.
    pub fn load(
        files: &[ModelFile],
        profile: &Profile,
        config: &EngineConfig,
        on_event: &(dyn Fn(LoadEvent) + Sync),
    ) -> Result<Engine, EngineError> {
        let backend = backend::backend();
        // Decodes of different models overlap on a GPU backend (CUDA, Metal) and take turns
        // on a CPU, unless the config says otherwise.
        let concurrent = config.concurrent_decodes.unwrap_or_else(|| backend.supports_gpu_offload());
        tracing::info!(concurrent_decodes = concurrent, gpu_offload = backend.supports_gpu_offload(), "engine backend");
        let turn = worker::Turns::new(!concurrent);
        let mut loaded = Loaded::default();
        let mut models = Vec::new();
        let mut roles = BTreeMap::new();
        for file in files {
            on_event(LoadEvent::Loading { model: file.name.clone(), roles: file.roles.clone() });
            let started = std::time::Instant::now();
            let model = loaded.get(&file.path)?;
            let specs: Vec<(Role, &RoleSpec)> = file.roles.iter().map(|&r| (r, profile.role(r))).collect();
            let draft = match draft_file(file, config.speculation)? {
                Some(path) => {
                    if !loaded.0.contains_key(&path) {
                        on_event(LoadEvent::Loading { model: file_name(&path), roles: Vec::new() });
                    }
                    let draft = loaded.get(&path)?;
                    draft::check_vocab(model, draft).map_err(|message| EngineError::Draft {
                        model: file.name.clone(),
                        draft: path.clone(),
                        message,
                    })?;
                    tracing::info!(model = %file.name, draft = %path.display(), "speculation with a draft model");
                    Some(draft)
                }
                None => None,
            };
            let shared = start_worker(&file.name, model, draft, &specs, config, turn.clone())?;
            tracing::info!(
                model = %file.name, roles = ?file.roles, params = model.n_params(),
                context = shared.limits.n_ctx, sequences = shared.limits.n_seq,
                secs = format!("{:.1}", started.elapsed().as_secs_f32()), "model loaded"
            );
            models.push(ModelInfo {
                name: file.name.clone(),
                path: file.path.clone(),
                roles: file.roles.clone(),
                metrics: shared.metrics.clone(),
            });
            for (role, spec) in specs {
                let template = ChatTemplate::resolve(model, spec.chat_template.as_deref());
                if template.is_none() {
                    tracing::warn!(%role, "model has no chat template and none is configured; chat requests will fail");
                }
                let n_ctx = spec.context.min(model.n_ctx_train().max(64));
                let vision = match file.mmproj.get(&role) {
                    Some(path) => Some(Arc::new(vision::Vision::load(model, path, config.threads as i32)?)),
                    None => None,
                };
                let inner = RoleInner { role, spec: spec.clone(), template, n_ctx, model: shared.clone(), vision };
                roles.insert(role, RoleHandle(Arc::new(inner)));
                on_event(LoadEvent::Ready { role, model: file.name.clone() });
            }
        }
        Ok(Engine { models, roles })
    }

    pub fn role(&self, role: Role) -> Option<&RoleHandle> {
        self.roles.get(&role)
    }

    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }
}

/// Every worker thread started, so that the process can wait for them at exit.
static WORKERS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> = std::sync::Mutex::new(Vec::new());

/// Waits, at most `limit`, for the workers whose handles are all gone to free their contexts.
/// Called at process exit: a context freed while the CUDA runtime shuts down aborts the
/// process ("driver shutting down").
pub fn wait_for_workers(limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let threads = std::mem::take(&mut *WORKERS.lock().unwrap_or_else(|p| p.into_inner()));
    while threads.iter().any(|t| !t.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Models by file, each loaded once (mmap) and kept as long as the process: workers'
/// contexts borrow them.
#[derive(Default)]
struct Loaded(BTreeMap<PathBuf, &'static LlamaModel>);

impl Loaded {
    fn get(&mut self, path: &std::path::Path) -> Result<&'static LlamaModel, EngineError> {
        if let Some(&model) = self.0.get(path) {
            return Ok(model);
        }
        let model = LlamaModel::load_from_file(backend::backend(), path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Load { path: path.to_path_buf(), message: e.to_string() })?;
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        self.0.insert(path.to_path_buf(), model);
        Ok(model)
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The draft model `file`'s worker speculates with, if any: with `draft`, its roles' draft
/// model (which must then exist); otherwise none.
fn draft_file(file: &ModelFile, speculation: Speculative) -> Result<Option<PathBuf>, EngineError> {
    let Some(path) = &file.draft else { return Ok(None) };
    match speculation {
        Speculative::Draft if !path.exists() => Err(EngineError::Load {
            path: path.clone(),
            message: "the draft model is not there; run `quorum models pull`".into(),
        }),
        Speculative::Draft => Ok(Some(path.clone())),
        _ => Ok(None),
    }
}

/// What the roles on one model share: its worker's queue and counters.
struct SharedModel {
    model: &'static LlamaModel,
    tx: mpsc::Sender<worker::Job>,
    metrics: Arc<ModelMetrics>,
    limits: scheduler::Limits,
}

/// One context for all roles on `model`: its KV holds every role's context, and its
/// sequences every role's parallel samples.
fn start_worker(
    name: &str,
    model: &'static LlamaModel,
    draft: Option<&'static LlamaModel>,
    roles: &[(Role, &RoleSpec)],
    config: &EngineConfig,
    turn: worker::Turns,
) -> Result<Arc<SharedModel>, EngineError> {
    let role = roles[0].0;
    let role_ctx = |s: &RoleSpec| s.context.min(model.n_ctx_train().max(64));
    // llama.cpp allows at most 256 sequences per context.
    let n_seq: u32 = roles.iter().map(|(_, s)| s.parallel).sum::<u32>().clamp(1, 256);
    // Unified: one pool of cells shared by every sequence (a fork stores its prompt once).
    // Split: each sequence gets its own stream of n_ctx / n_seq cells, so each must be
    // as large as the largest role context.
    let n_ctx: u32 = if config.kv_unified {
        roles.iter().map(|(_, s)| role_ctx(s)).sum()
    } else {
        roles.iter().map(|(_, s)| role_ctx(s)).max().unwrap_or(64) * n_seq
    };
    let n_batch = n_ctx.min(512);
    let threads = config.threads as i32;
    let flash = if config.flash_attention {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO
    } else {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED
    };
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(n_seq)
        .with_kv_unified(config.kv_unified)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(flash);
    // Contexts are created one at a time, here, then moved to their thread.
    let ctx = model
        .new_context(backend::backend(), params.clone())
        .map_err(|e| EngineError::Context { role, message: e.to_string() })?;
    let (tx, rx) = mpsc::channel(config.queue);
    let limits = scheduler::Limits { n_ctx, n_batch, n_seq, prompt_cache: config.prompt_cache };
    let metrics = Arc::new(ModelMetrics::default());
    // A recurrent state cannot drop the positions of rejected drafts.
    let recurrent = model.is_recurrent() || model.is_hybrid();
    if recurrent && config.speculation != Speculative::Off {
        tracing::info!(model = name, "a recurrent model: no speculative decoding");
    }
    let drafting = match (config.speculation, draft) {
        _ if recurrent => worker::Drafting::Off,
        (Speculative::Off, _) => worker::Drafting::Off,
        (_, None) => worker::Drafting::Lookup,
        (_, Some(draft)) => {
            let draft = draft::DraftModel::new(draft, params.clone(), n_batch, n_seq)
                .map_err(|message| EngineError::Context { role, message })?;
            worker::Drafting::Model(Box::new(draft))
        }
    };
    let worker = worker::Worker {
        name: name.to_string(),
        ctx,
        params,
        model,
        rx,
        turn,
        limits,
        metrics: metrics.clone(),
        drafting,
    };
    let thread = std::thread::Builder::new()
        .name(format!("quorum-{}", name.trim_end_matches(".gguf")))
        .spawn(move || worker.run())
        .map_err(|e| EngineError::Context { role, message: e.to_string() })?;
    WORKERS.lock().unwrap_or_else(|p| p.into_inner()).push(thread);
    Ok(Arc::new(SharedModel { model, tx, metrics, limits }))
}

/// A cheap, clonable handle on one role.
#[derive(Clone)]
pub struct RoleHandle(Arc<RoleInner>);

struct RoleInner {
    role: Role,
    spec: RoleSpec,
    template: Option<ChatTemplate>,
    /// The role's own context limit (its share of the model's KV).
    n_ctx: u32,
    model: Arc<SharedModel>,
    /// The vision projector, where the role has one.
    vision: Option<Arc<vision::Vision>>,
}

impl RoleHandle {
    pub fn role(&self) -> Role {
        self.0.role
    }

    /// The parameters of the role's model.
    pub fn parameters(&self) -> u64 {
        self.0.model.model.n_params()
    }

    pub fn spec(&self) -> &RoleSpec {
        &self.0.spec
    }

    pub fn context_size(&self) -> u32 {
        self.0.n_ctx
    }

    /// Whether this role's worker is being restarted after a fault.
    pub fn recovering(&self) -> bool {
        self.0.model.metrics.recovering()
    }

    /// Test hook: the worker panics at its next decode step, as a fault inside it would.
    #[doc(hidden)]
    pub fn inject_fault(&self) {
        self.0.model.metrics.inject_fault();
    }

    /// Counters of the model serving this role (shared with the other roles on it).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.0.model.metrics.snapshot()
    }

    fn template(&self) -> Result<&ChatTemplate, EngineError> {
        self.0.template.as_ref().ok_or(EngineError::NoChatTemplate)
    }

    /// Renders a conversation with the model's chat template, the assistant's turn opened.
    pub fn format_chat(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        let plan = self.plan_tools(messages, &ToolRequest { choice: ToolChoice::None, ..ToolRequest::default() })?;
        Ok(plan.prompt)
    }

    /// How this role's model writes tool calls (from its chat template).
    pub fn tool_format(&self) -> ToolFormat {
        let template = self.0.template.as_ref();
        match template {
            Some(t) if t.knows_tools() => ToolFormat::detect(t.source()),
            _ => ToolFormat::Generic,
        }
    }

    /// A chat with tools: the prompt as the model's template writes tools (or quorum's
    /// generic description where it has none), the grammar that holds calls to the
    /// functions' schemas, and the parser of the answer. CPU work: call it off the runtime.
    pub fn plan_tools(&self, messages: &[ChatMessage], req: &ToolRequest) -> Result<ToolPrompt, EngineError> {
        let template = self.template()?;
        let convert = |schema: &serde_json::Value| json_schema_grammar(&schema.to_string()).map_err(|e| e.to_string());
        let plan = tool_calls::ToolPlan::new(self.tool_format(), template.knows_tools(), messages, req, &convert)
            .map_err(EngineError::Tools)?;
        let prompt = template.render(&plan.messages, &plan.template_tools, true)?;
        Ok(ToolPrompt { prompt, grammar: plan.grammar, triggers: plan.triggers, parser: plan.parser })
    }

    /// The model's fill-in-the-middle prompt from its FIM tokens: other files first (where
    /// the model has a file separator), then the prefix, the suffix and the middle to write.
    pub fn fim_prompt(&self, prefix: &str, suffix: &str, extra: &[(String, String)]) -> Result<String, EngineError> {
        let vocab = self.0.model.model.vocab();
        let piece = |t: LlamaToken| {
            (t.0 >= 0).then(|| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned())
        };
        let (Some(pre), Some(suf), Some(mid)) =
            (piece(vocab.fim_pre()), piece(vocab.fim_suf()), piece(vocab.fim_mid()))
        else {
            return Err(EngineError::NoFim(self.0.role));
        };
        let mut text = String::new();
        if let Some(sep) = piece(vocab.fim_sep()).filter(|_| !extra.is_empty()) {
            for (name, body) in extra {
                text.push_str(&format!("{sep}{name}\n{body}"));
                if !body.ends_with('\n') {
                    text.push('\n');
                }
            }
            text.push_str(&sep);
        }
        text.push_str(&format!("{pre}{prefix}{suf}{suffix}{mid}"));
        Ok(text)
    }

    /// Tokens of `text` as this model counts them (special tokens parsed).
    /// Whether the role's model sees images (a vision projector is loaded).
    pub fn sees_images(&self) -> bool {
        self.0.vision.is_some()
    }

    /// The model's answer to `question` about `image` (checked by the caller), through its
    /// vision projector. Blocking.
    pub fn describe_image(&self, image: &[u8], question: &str, max_tokens: u32) -> Result<String, EngineError> {
        let vision = self.0.vision.as_ref().ok_or_else(|| {
            EngineError::InvalidRequest(format!("the {} role has no vision projector (mmproj)", self.0.role))
        })?;
        let content = format!("{}\n{question}", vision::Vision::marker());
        let prompt = self.format_chat(&[ChatMessage::new("user", content)])?;
        vision.describe(image, &prompt, max_tokens)
    }

    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenize(text).len()
    }

    fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.0.model.model.vocab();
        // A template that writes the BOS text itself must not get a second BOS.
        let bos = vocab.token_to_piece(vocab.bos(), true, None);
        let add_bos = bos.is_empty() || !text.as_bytes().starts_with(&bos);
        vocab.tokenize(text.as_bytes(), add_bos, true)
    }

    /// Validates, tokenizes and queues a request. Fails fast with `Overloaded` when the
    /// model's queue is full rather than letting it grow without bound.
    pub fn submit(&self, req: GenerateRequest) -> Result<Generation, EngineError> {
        let inner = &self.0;
        let parallel = inner.spec.parallel;
        if req.n == 0 || req.n > parallel {
            return Err(EngineError::Samples(format!("n must be between 1 and {parallel} for this model")));
        }
        let text = match &req.prompt {
            Prompt::Chat(messages) => self.format_chat(messages)?,
            Prompt::Text(text) => text.clone(),
        };
        let tokens = self.tokenize(&text);
        if tokens.is_empty() {
            return Err(EngineError::InvalidPrompt("the prompt is empty".into()));
        }
        let n_ctx = inner.n_ctx;
        let room = (n_ctx as usize).saturating_sub(tokens.len()) / req.n as usize;
        if room == 0 {
            return Err(EngineError::ContextLength { prompt_tokens: tokens.len(), n_ctx, n: req.n });
        }
        let defaults = inner.spec.sampling;
        let s = req.sampling;
        let max_new = s.max_tokens.unwrap_or(defaults.max_tokens).max(1).min(room as u32);
        let n_vocab = inner.model.model.n_vocab();
        if let Some(&(token, _)) = s.logit_bias.iter().find(|(t, _)| *t < 0 || *t >= n_vocab) {
            return Err(EngineError::InvalidRequest(format!(
                "logit_bias names token {token}; this model's tokens are 0 to {}",
                n_vocab - 1
            )));
        }
        let base = sampling::Sampling {
            temperature: s.temperature.unwrap_or(defaults.temperature),
            top_p: s.top_p.unwrap_or(defaults.top_p),
            top_k: s.top_k.unwrap_or(40).clamp(1, 1000),
            seed: s.seed.unwrap_or_else(random_seed),
            grammar: s.grammar,
            triggers: s.grammar_triggers,
            penalties: sampling::Penalties {
                presence: s.presence_penalty,
                frequency: s.frequency_penalty,
                repeat: if s.repeat_penalty > 0.0 { s.repeat_penalty } else { 1.0 },
            },
            logit_bias: s.logit_bias,
        };
        if !s.temperatures.is_empty() && s.temperatures.len() != req.n as usize {
            return Err(EngineError::InvalidRequest(format!(
                "{} temperatures for n = {}",
                s.temperatures.len(),
                req.n
            )));
        }
        // One sampler per sample, each with its own seed (and temperature, if given).
        if let Some(gbnf) = &base.grammar {
            check_grammar(gbnf, &GrammarLimits::default()).map_err(|e| EngineError::Grammar(e.to_string()))?;
        }
        let samplers = (0..req.n)
            .map(|i| {
                let temperature = s.temperatures.get(i as usize).copied().unwrap_or(base.temperature);
                sampling::Sampling { seed: base.seed.wrapping_add(i), temperature, ..base.clone() }
                    .sampler(inner.model.model)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(EngineError::Grammar)?;
        let (tx, events) = mpsc::unbounded_channel();
        let prompt_tokens = tokens.len() as u32;
        let job =
            worker::Job { tokens, max_new, samplers, stop: s.stop, ignore_eos: s.ignore_eos, specials: s.specials, tx };
        inner.model.tx.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Overloaded(inner.role),
            mpsc::error::TrySendError::Closed(_) => EngineError::WorkerGone,
        })?;
        Ok(Generation { prompt_tokens, n: req.n, events })
    }

    /// [`RoleHandle::submit`] off the async runtime: tokenizing a long prompt and compiling
    /// a grammar are CPU work, and a compile that takes longer than `COMPILE_BUDGET` is
    /// answered as a refused grammar (the checks bound what it can cost).
    pub async fn start(&self, req: GenerateRequest) -> Result<Generation, EngineError> {
        let handle = self.clone();
        let work = tokio::task::spawn_blocking(move || handle.submit(req));
        match tokio::time::timeout(COMPILE_BUDGET, work).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(EngineError::Decode(format!("the request could not be prepared: {e}"))),
            Err(_) => Err(EngineError::Grammar(format!(
                "preparing the request took more than {} s; simplify the grammar or schema",
                COMPILE_BUDGET.as_secs()
            ))),
        }
    }
}

/// A chat with tools, ready for the engine: the rendered prompt, the grammar (lazy from its
/// triggers when there are any) and how to read the answer (`None`: plain text).
#[derive(Debug)]
pub struct ToolPrompt {
    pub prompt: String,
    pub grammar: Option<String>,
    pub triggers: Vec<String>,
    pub parser: Option<ToolParser>,
}

/// The longest a request may take to be tokenized and have its grammar compiled.
const COMPILE_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// A GBNF grammar that accepts exactly the JSON documents valid under `schema`. The schema
/// is checked before llama.cpp's converter sees it, and the grammar after.
pub fn json_schema_grammar(schema: &str) -> Result<String, EngineError> {
    let limits = GrammarLimits::default();
    let value: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| EngineError::Schema(format!("the JSON schema is not JSON: {e}")))?;
    check_schema(&value, &limits).map_err(|e| EngineError::Schema(format!("JSON schema refused: {e}")))?;
    let gbnf = llama_cpp_2::json_schema_to_grammar(schema).map_err(|e| {
        EngineError::Schema(format!(
            "llama.cpp cannot convert this JSON schema to a grammar ({e}); see its supported subset"
        ))
    })?;
    check_grammar(&gbnf, &limits)
        .map_err(|e| EngineError::Schema(format!("the JSON schema's grammar is refused: {e}")))?;
    Ok(gbnf)
}

fn random_seed() -> u32 {
    std::collections::hash_map::RandomState::new().build_hasher().finish() as u32
}
