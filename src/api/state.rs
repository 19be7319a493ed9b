//! What every handler shares: the engine once it is loaded, and load progress for
//! `/health` until then.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::ApiError;
use crate::engine::{Engine, LoadEvent, RoleHandle};
use crate::media::Media;
use crate::models::{Profile, Role};
use crate::pipeline::{EngineModels, Pipeline, Setup};
use crate::state::TaskStore;
use crate::tools::{Tools, Workspaces};

/// The model id of the multi-agent pipeline.
pub const PIPELINE_MODEL: &str = "quorum";

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    engine: OnceLock<Arc<Engine>>,
    media: Media,
    pipeline: OnceLock<Pipeline>,
    setup: Setup,
    tasks: TaskStore,
    workspaces: Workspaces,
    profile: String,
    status: Mutex<Status>,
    started: u64,
    aliases: Vec<(String, String)>,
    remote_images: bool,
}

#[derive(Debug, Clone)]
struct Status {
    roles: BTreeMap<Role, (String, &'static str)>,
    error: Option<String>,
}

impl AppState {
    pub fn new(profile: &Profile, tasks: TaskStore, workspaces: impl Into<Workspaces>, setup: Setup) -> AppState {
        let roles = profile.roles.iter().map(|(r, s)| (*r, (s.source.file_name(), "waiting"))).collect();
        AppState(Arc::new(Shared {
            engine: OnceLock::new(),
            media: Media::default(),
            pipeline: OnceLock::new(),
            setup,
            tasks,
            workspaces: workspaces.into(),
            profile: profile.name.clone(),
            status: Mutex::new(Status { roles, error: None }),
            started: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            aliases: Vec::new(),
            remote_images: false,
        }))
    }

    /// Model names clients send, mapped to quorum's ids (`[aliases]` in the config).
    pub fn with_aliases(mut self, aliases: Vec<(String, String)>) -> AppState {
        Arc::get_mut(&mut self.0).expect("aliases are set before the state is shared").aliases = aliases;
        self
    }

    /// Lets `image_url` name http(s) URLs (`allow_remote_images` in the config).
    pub fn with_remote_images(mut self, allowed: bool) -> AppState {
        Arc::get_mut(&mut self.0).expect("set before the state is shared").remote_images = allowed;
        self
    }

    pub fn remote_images(&self) -> bool {
        self.0.remote_images
    }

    /// The id an alias stands for (the first pattern that matches).
    pub fn alias(&self, model: &str) -> Option<&str> {
        // Names are short; a long one is no alias (and cannot make matching slow).
        if model.len() > 256 {
            return None;
        }
        self.0.aliases.iter().find(|(pattern, _)| glob(pattern, model)).map(|(_, target)| target.as_str())
    }

    /// A request's model id, with aliases applied.
    pub fn model_id<'a>(&'a self, model: &'a str) -> &'a str {
        if self.model_ids().iter().any(|id| id == model) {
            return model;
        }
        self.alias(model).unwrap_or(model)
    }

    pub fn on_load_event(&self, event: &LoadEvent) {
        let mut status = self.0.status.lock().expect("status lock");
        match event {
            LoadEvent::Loading { model, roles } => {
                for role in roles {
                    status.roles.insert(*role, (model.clone(), "loading"));
                }
            }
            LoadEvent::Ready { role, model } => {
                status.roles.insert(*role, (model.clone(), "ready"));
            }
        }
    }

    pub fn set_engine(&self, engine: Engine) {
        // A role the engine did not load (the preprocessor, where nothing uses it) is not served.
        self.0.status.lock().expect("status lock").roles.retain(|role, _| engine.role(*role).is_some());
        let engine = Arc::new(engine);
        let models = Arc::new(EngineModels(engine.clone()));
        let pipeline = self.0.setup.pipeline(models, self.0.workspaces.clone(), self.0.tasks.clone());
        let _ = self.0.engine.set(engine);
        let _ = self.0.pipeline.set(pipeline);
    }

    /// The pipeline, once the models are loaded.
    pub fn pipeline(&self) -> Result<&Pipeline, ApiError> {
        self.0.pipeline.get().ok_or_else(ApiError::loading)
    }

    pub fn set_failed(&self, message: String) {
        self.0.status.lock().expect("status lock").error = Some(message);
    }

    pub fn tasks(&self) -> &TaskStore {
        &self.0.tasks
    }

    /// The default workspace's tools.
    pub fn tools(&self) -> &Tools {
        self.0.workspaces.default_tools()
    }

    /// Speech and image reading.
    pub fn media(&self) -> &Media {
        &self.0.media
    }

    pub fn workspaces(&self) -> &Workspaces {
        &self.0.workspaces
    }

    /// The tools of the workspace a request names (`None`: the default one); a workspace
    /// outside the server's roots is refused (403).
    pub fn tools_for(&self, name: Option<&str>) -> Result<Tools, ApiError> {
        Ok(self.0.workspaces.open(name.unwrap_or_default())?)
    }

    pub fn started(&self) -> u64 {
        self.0.started
    }

    /// `/health`: ready (200), still loading or failed (503), with each role's state.
    pub fn health(&self) -> (bool, serde_json::Value) {
        let status = self.0.status.lock().expect("status lock").clone();
        let ready = self.0.engine.get().is_some();
        let state = match (&status.error, ready) {
            (Some(_), _) => "error",
            (None, true) => "ok",
            (None, false) => "loading",
        };
        let engine = self.0.engine.get();
        let roles: serde_json::Map<String, serde_json::Value> = status
            .roles
            .iter()
            .map(|(role, (model, state))| {
                let mut entry = serde_json::json!({"model": model, "state": state});
                if let Some(handle) = engine.and_then(|e| e.role(*role)) {
                    let metrics = handle.metrics();
                    entry["running"] = metrics.running.into();
                    entry["context"] = handle.context_size().into();
                    entry["restarts"] = metrics.restarts.into();
                    if handle.recovering() {
                        entry["state"] = "recovering".into();
                    }
                }
                (role.to_string(), entry)
            })
            .collect();
        let body = serde_json::json!({
            "status": state, "profile": self.0.profile, "roles": roles, "error": status.error,
            "state": self.0.tasks.store().backend(),
            "speech": self.0.media.speech_model(),
        });
        (ready, body)
    }

    /// Prometheus text exposition of every model's counters (empty while loading).
    pub fn metrics(&self) -> String {
        let Some(engine) = self.0.engine.get() else { return String::new() };
        let snapshots: Vec<_> = engine.models().iter().map(|m| (m.name.clone(), m.metrics.snapshot())).collect();
        super::metrics::render(&snapshots)
    }

    /// Ids that `/v1/models` lists: one per role, the pipeline, and the pipeline on each
    /// repository under the workspace roots (`quorum@NAME`).
    pub fn model_ids(&self) -> Vec<String> {
        let on = self.0.workspaces.names().into_iter().map(|name| format!("{PIPELINE_MODEL}@{name}"));
        let roles: Vec<Role> = self.0.status.lock().expect("status lock").roles.keys().copied().collect();
        roles.iter().map(|r| r.to_string()).chain([PIPELINE_MODEL.to_string()]).chain(on).collect()
    }

    /// Resolves a request's `model` to a role's handle.
    pub fn role(&self, model: &str) -> Result<RoleHandle, ApiError> {
        let role: Role =
            self.model_id(model).parse().map_err(|_| ApiError::model_not_found(model, &self.model_ids()))?;
        let engine = self.0.engine.get().ok_or_else(ApiError::loading)?;
        engine.role(role).cloned().ok_or_else(|| ApiError::model_not_found(model, &self.model_ids()))
    }
}

/// `*` matches any text (also none); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn alias_patterns() {
        assert!(glob("claude-*", "claude-sonnet-4-5"));
        assert!(glob("*", "anything"));
        assert!(glob("gpt-*-mini", "gpt-4o-mini"));
        assert!(!glob("gpt-*-mini", "gpt-4o"));
        assert!(!glob("coder", "coder2"));
    }
}
