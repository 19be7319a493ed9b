//! The MAKER pipeline: preprocess -> plan -> code (candidates from one prefill) -> vote
//! (first-to-ahead-by-k) -> review (at most `max_rounds`, then one re-plan) -> output.
//!
//! Layout, in the direction of the arrows: [`runner`] claims a task and asks
//! [`run::next_step`] what its typed run record ([`run`]) needs next; one of [`stages`]
//! does it, using the rest: [`context`] (the code the models see), [`evidence`] (scratch
//! worktrees, test runs, behaviour probes), [`answer`] (the coders' answer formats),
//! [`ballot`] (pure voting, also used by `quorum eval`), [`record`] (what stages produce)
//! and [`event`] (the task log's events). The record is saved at every transition, so
//! that an interrupted task resumes after its last completed stage. Stages reach models
//! only through [`Models`], so their logic runs against a scripted fake in tests.

mod answer;
pub mod ballot;
mod context;
mod event;
mod evidence;
mod excerpt;
mod heuristics;
mod models;
mod options;
mod record;
mod red_flag;
mod run;
mod runner;
mod stages;
mod tuning;

use std::sync::Arc;

pub use self::answer::{EditBlocks, Format as AnswerFormat};
pub use self::context::retrieve;
pub use self::event::{Event, Logged};
pub use self::heuristics::is_auxiliary_request;
pub use self::models::{Ask, Ending, EngineModels, Models, Sample, ScriptedModels};
pub use self::options::PipelineOptions;
pub use self::red_flag::RedFlag;
pub use self::runner::Pipeline;
pub use self::tuning::VOTE_TEMPERATURE;

use crate::models::Role;
use crate::prompts::Prompts;
use crate::state::{Stage, StateError, TaskStore};
use crate::tools::{ToolError, Tools, Workspaces};

/// What every pipeline of a process shares besides its models, workspace and task store:
/// the prompts and the default options. The server, the CLI and the eval read it with
/// [`Setup::from_config`] and make their pipelines with [`Setup::pipeline`].
#[derive(Clone, Default)]
pub struct Setup {
    pub prompts: Prompts,
    pub options: PipelineOptions,
}

impl Setup {
    /// The config's prompt files and `[pipeline]` options, with `overrides` (JSON, null for
    /// none) over them.
    pub fn from_config(config: &crate::config::Config, overrides: &serde_json::Value) -> Result<Setup, PipelineError> {
        let prompts = Prompts::load(config.prompts.as_deref())
            .map_err(|e| PipelineError::Invalid(format!("cannot read the prompt files: {e}")))?;
        let options = PipelineOptions::default()
            .with(&config.pipeline)
            .map_err(|e| PipelineError::Invalid(format!("the config file's [pipeline]: {e}")))?
            .with(overrides)?;
        Ok(Setup { prompts, options })
    }

    /// A pipeline over `workspaces`: one [`Tools`] for a single repository, or
    /// [`Workspaces`] for a server's roots.
    pub fn pipeline(&self, models: Arc<dyn Models>, workspaces: impl Into<Workspaces>, tasks: TaskStore) -> Pipeline {
        Pipeline::new(models, workspaces.into(), tasks, self.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("model: {0}")]
    Model(String),
    #[error("workspace: {0}")]
    Workspace(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("tool: {0}")]
    Tool(#[from] ToolError),
    #[error("invalid task: {0}")]
    Invalid(String),
    /// Another runner (in this process or another) holds the task.
    #[error("task `{0}` is being run elsewhere")]
    Busy(String),
    /// Stopped on request; the reason is kept in the record.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// The task has already ended (cancelling it again, resuming a finished one).
    #[error("task `{id}` has already {status}")]
    Finished { id: String, status: crate::state::TaskStatus },
}

/// What every stage works with.
pub(crate) struct Ctx<'a> {
    pub models: &'a dyn Models,
    pub tools: &'a Tools,
    pub tasks: &'a TaskStore,
    pub prompts: &'a Prompts,
    pub options: &'a PipelineOptions,
    pub task_id: &'a str,
    pub budget: Budget,
    /// What the run's tests and probes did on the trees they ran on.
    pub seen: evidence::Seen,
}

/// A task's time budget (`time_budget_secs`), from when this run of it started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    started: std::time::Instant,
    secs: u64,
}

impl Budget {
    pub fn new(secs: u64) -> Budget {
        Budget { started: std::time::Instant::now(), secs }
    }

    /// Whether the task has a time budget.
    pub fn is_set(&self) -> bool {
        self.secs > 0
    }

    /// Whether at least `share` of the budget is spent (never without a budget).
    pub fn spent(&self, share: f64) -> bool {
        self.secs > 0 && self.started.elapsed().as_secs_f64() >= self.secs as f64 * share
    }

    /// When work must end to keep `share` of the budget and `reserve` after it (None
    /// without a budget); work that would get less than half of the time left gets that
    /// half.
    pub fn deadline(&self, share: f64, reserve: std::time::Duration) -> Option<tokio::time::Instant> {
        let left = self.left()?;
        let kept = std::time::Duration::from_secs_f64(self.secs as f64 * share) + reserve;
        Some(tokio::time::Instant::now() + left.saturating_sub(kept).max(left / 2))
    }

    /// The time until `share` of the budget is spent (None without a budget; zero past it).
    pub fn until(&self, share: f64) -> Option<std::time::Duration> {
        let at = std::time::Duration::from_secs_f64(self.secs as f64 * share);
        (self.secs > 0).then(|| at.saturating_sub(self.started.elapsed()))
    }

    /// The time left (None without a budget; zero once spent).
    pub fn left(&self) -> Option<std::time::Duration> {
        let total = std::time::Duration::from_secs(self.secs);
        (self.secs > 0).then(|| total.saturating_sub(self.started.elapsed()))
    }

    /// The event that says a stage takes the cheaper path.
    pub fn cut(&self, cut: &str) -> Event {
        Event::Budget { elapsed_secs: self.started.elapsed().as_secs(), budget_secs: self.secs, cut: cut.to_string() }
    }
}

impl Ctx<'_> {
    /// Logs an event of `stage` in the task's event log and publishes it.
    pub async fn emit(&self, stage: Stage, event: Event) -> Result<(), PipelineError> {
        let (kind, data) = event.into_parts();
        self.tasks.event(self.task_id, &kind, Some(stage), data).await?;
        Ok(())
    }

    pub fn prompt(&self, role: Role) -> &str {
        self.prompts.get(role)
    }

    /// One answer from `role` under its prompt, constrained to JSON valid for `schema`.
    pub async fn ask_json(
        &self,
        role: Role,
        schema: &serde_json::Value,
        user: String,
        max_tokens: u32,
    ) -> Result<String, PipelineError> {
        self.ask_json_as(self.prompt(role), role, schema, user, max_tokens).await
    }

    /// The same under another system prompt: `role` names the model.
    pub async fn ask_json_as(
        &self,
        system: &str,
        role: Role,
        schema: &serde_json::Value,
        user: String,
        max_tokens: u32,
    ) -> Result<String, PipelineError> {
        let grammar =
            crate::engine::json_schema_grammar(&schema.to_string()).map_err(|e| PipelineError::Model(e.to_string()))?;
        let ask = Ask::new(system, user, max_tokens).grammar(grammar);
        let answer = self.models.ask(role, ask).await?.into_iter().next();
        Ok(answer.ok_or_else(|| PipelineError::Model(format!("the {role} returned no answer")))?.text)
    }

    /// Whether candidates' tests run: asked for, and the workspace has a test command.
    pub fn has_tests(&self) -> bool {
        self.options.run_tests && !crate::tools::test_commands(self.tools.workspace().root()).is_empty()
    }
}

/// Shared by the runner's handle.
pub(crate) struct Shared {
    pub defaults: PipelineOptions,
    pub models: Arc<dyn Models>,
    pub workspaces: Workspaces,
    pub tasks: TaskStore,
    pub prompts: Prompts,
    /// Tasks this process runs, each with the signal that stops it.
    pub running: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
}
