//! The composition root: builds the engine and the HTTP server from a [`Config`] and owns
//! start-up and shutdown.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::engine::{Engine, LoadEvent};
use crate::media::{Media, IMAGE_QUESTION};
use crate::models::{self, ModelFile, Role};
use crate::pipeline::{PipelineOptions, Setup};
use crate::state::{self, TaskStore};
use crate::tools::{Tools, Workspace, Workspaces};

/// Binds first (so `/health` answers 503 while models load), then loads every role in the
/// background and serves until Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let setup = Setup::from_config(&config, &serde_json::Value::Null)?;
    let files = files_for(&config, &serving_roles(&config, &setup.options))?;
    let workspaces = workspaces(&config)?;
    let root = workspaces.default_tools().workspace().root().display().to_string();
    tracing::info!(workspace = %root, roots = ?workspaces.roots(), "codebase tools ready");
    let tasks = open_tasks(&config).await?;
    let listener = TcpListener::bind((config.host, config.port)).await.with_context(|| {
        format!("cannot listen on {}:{} (is the port in use? pick another with --port)", config.host, config.port)
    })?;
    let addr = listener.local_addr()?;
    // On stdout, for scripts and tests that start the server on port 0.
    println!("quorum listening on http://{addr}");
    let state = AppState::new(&config.profile, tasks, workspaces, setup)
        .with_aliases(config.aliases.clone())
        .with_remote_images(config.allow_remote_images);
    let rules = &config.access;
    let access = api::Access::new(
        &rules.api_keys,
        &rules.allowed_origins,
        rules.max_body_bytes.unwrap_or(api::DEFAULT_BODY_LIMIT),
    );
    let loader = state.clone();
    tokio::task::spawn_blocking(move || {
        // Speech first (a second or two): once /health says ready, everything is.
        loader.media().load_speech(config.speech_model.as_deref());
        match load(&files, &config, &|event| loader.on_load_event(&event)) {
            Ok(engine) => {
                tracing::info!("all roles ready");
                connect_vision(&engine, loader.media());
                loader.set_engine(engine);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "loading models failed");
                loader.set_failed(format!("{e:#}"));
            }
        }
    });
    api::serve_with(listener, state, access, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await
    .context("HTTP server failed")
}

/// Where the preprocessor sees images (a vision projector in the profile), images are
/// described by it rather than read by OCR.
pub fn connect_vision(engine: &Engine, media: &Media) {
    let Some(role) = engine.role(Role::Preprocessor).filter(|r| r.sees_images()).cloned() else { return };
    tracing::info!("images are described by the preprocessor's vision model");
    media.set_vision(Arc::new(move |image: &[u8]| {
        role.describe_image(image, IMAGE_QUESTION, VISION_TOKENS).map_err(|e| e.to_string())
    }));
}

/// An image's description: its text copied, and a sentence.
const VISION_TOKENS: u32 = 512;

/// Opens the state store for this process (see [`TaskStore::start`]).
pub async fn open_tasks(config: &Config) -> anyhow::Result<TaskStore> {
    let store = state::open(&config.state).await.context("cannot open the state store")?;
    tracing::info!(backend = store.backend(), location = %config.state, "state store open");
    let tasks = TaskStore::start(store).await?;
    let audit = tasks.audit().await?;
    if audit.lost() > 0 {
        tracing::warn!(
            location = %config.state, expected = audit.expected, found = audit.found,
            "{} task record(s) are missing from the state store (a file not closed cleanly loses its last writes)", audit.lost()
        );
    }
    if !audit.unreadable.is_empty() {
        tracing::warn!(location = %config.state, ids = ?audit.unreadable, "task records that cannot be read are skipped");
    }
    Ok(tasks)
}

/// The workspace the tools and the pipeline work on.
pub fn workspace(config: &Config) -> anyhow::Result<Workspace> {
    Workspace::new(&config.workspace)
        .with_context(|| format!("cannot use {} as the workspace (pass --workspace)", config.workspace.display()))
}

/// The default workspace and the roots of the others a request may name.
pub fn workspaces(config: &Config) -> anyhow::Result<Workspaces> {
    let roots = &config.workspaces;
    Workspaces::new(Tools::new(workspace(config)?), roots).context("cannot use the config's `workspaces`")
}

/// Loads the given files, logging each step. Blocking.
pub fn load(files: &[ModelFile], config: &Config, on_event: &(dyn Fn(LoadEvent) + Sync)) -> anyhow::Result<Engine> {
    let engine = Engine::load(files, &config.profile, &config.engine, &|event| {
        match &event {
            LoadEvent::Loading { model, roles } => tracing::info!(%model, ?roles, "loading model"),
            LoadEvent::Ready { role, model } => tracing::info!(%role, %model, "role ready"),
        }
        on_event(event);
    })?;
    Ok(engine)
}

/// Loads just the file that serves `role` (for one-off CLI use).
pub fn load_role(config: &Config, role: Role) -> anyhow::Result<Engine> {
    load_roles(config, &[role])
}

/// Loads the files that serve `roles`, each once.
pub fn load_roles(config: &Config, roles: &[Role]) -> anyhow::Result<Engine> {
    load(&files_for(config, roles)?, config, &|_| {})
}

/// The files that serve `roles`, each once, with only those roles on them.
pub fn files_for(config: &Config, roles: &[Role]) -> anyhow::Result<Vec<ModelFile>> {
    Ok(models::resolve(&config.profile, &config.models_dir)?
        .into_iter()
        .filter_map(|f| {
            let kept: Vec<Role> = f.roles.iter().copied().filter(|r| roles.contains(r)).collect();
            (!kept.is_empty()).then_some(ModelFile { roles: kept, ..f })
        })
        .collect())
}

/// The roles a server or a run loads: every role but the preprocessor, which is loaded
/// where something uses it: `rewrite_task` by default, a vision projector, or a file it
/// shares with another role (where it costs nothing). Its rewrite did not help the planner
/// on the set measured for it (evals/RESULTS.md), so the small profile's Gemma is not loaded.
pub fn serving_roles(config: &Config, options: &PipelineOptions) -> Vec<Role> {
    let pre = config.profile.role(Role::Preprocessor);
    let shared = config.profile.roles.iter().any(|(r, s)| *r != Role::Preprocessor && s.source == pre.source);
    let used = options.rewrite_task || pre.mmproj.is_some() || shared;
    Role::ALL.into_iter().filter(|r| *r != Role::Preprocessor || used).collect()
}
