//! The MAKER pipeline: preprocess -> plan -> code (candidates from one prefill) -> vote
//! (first-to-ahead-by-k) -> review (at most `max_rounds`, then one re-plan) -> output.
//! One file per stage; [`runner`] moves a task from stage to stage, saving the task record
//! at every transition so that an interrupted task resumes after its last completed stage.
//! Stages reach models only through [`Models`], so their logic runs against a scripted
//! fake in tests.

pub mod ballot;
mod code;
pub mod edits;
mod event;
mod files;
mod models;
mod output;
mod plan;
mod preprocess;
mod probes;
mod red_flag;
mod review;
mod rewrite;
mod run;
mod runner;
mod vote;
mod worktree;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use self::event::{Event, Logged};
pub use self::models::{Ask, EngineModels, Models, Sample, ScriptedModels};
pub use self::preprocess::is_auxiliary_request;
pub use self::red_flag::RedFlag;
pub use self::runner::Pipeline;

use crate::models::Role;
use crate::prompts::Prompts;
use crate::state::{Stage, StateError, TaskStore};
use crate::tools::{ToolError, Tools};

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

/// How hard the pipeline tries. Every field may be set per task (`options` of the
/// workflow request); the rest keep these defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineOptions {
    /// Coder candidates per batch, sampled from one prefilled prompt.
    pub candidates: u32,
    /// In a plan's first round, further batches (each `retry_heat` hotter) are sampled
    /// while no choice settles it ([`ballot::settled`]), up to this many candidates in all;
    /// at most `candidates` means one batch.
    pub max_candidates: u32,
    /// Their temperatures are spread evenly over this range.
    pub min_temperature: f32,
    pub max_temperature: f32,
    /// First-to-ahead-by-k.
    pub k: u32,
    /// Votes at most; then plurality decides.
    pub max_votes: u32,
    pub vote_temperature: f32,
    /// Each retry round samples this much hotter (up to 1.2, or max_temperature if higher):
    /// at the same temperatures the 1.5B coder wrote the same wrong answer again.
    pub retry_heat: f32,
    /// Code-vote-review rounds per plan.
    pub max_rounds: u32,
    /// Re-plans after `max_rounds` rejections before the task fails.
    pub replans: u32,
    /// Tokens of code the planner and the coders see (the planner's tokenizer counts).
    pub context_tokens: usize,
    /// A candidate longer than this is red-flagged (plus the files' length when the coder
    /// writes them whole).
    pub coder_max_tokens: u32,
    /// The coder writes files up to this many lines whole, and edits longer ones with
    /// search/replace blocks; 0 means always blocks.
    pub whole_file_lines: usize,
    /// Edge-case calls the reviewer writes for Python code; candidates that return the same
    /// on all of them are one choice, and the largest such group wins (0: off).
    pub probes: u32,
    /// Run the workspace's tests on each candidate.
    pub run_tests: bool,
    pub test_timeout_secs: u64,
}

impl Default for PipelineOptions {
    fn default() -> PipelineOptions {
        PipelineOptions {
            candidates: 5,
            max_candidates: 10,
            min_temperature: 0.3,
            max_temperature: 0.7,
            k: 2,
            max_votes: 9,
            vote_temperature: 0.8,
            retry_heat: 0.3,
            max_rounds: 3,
            replans: 1,
            context_tokens: 1500,
            coder_max_tokens: 512,
            whole_file_lines: 80,
            probes: 8,
            run_tests: true,
            test_timeout_secs: 300,
        }
    }
}

impl PipelineOptions {
    /// `overrides` (a JSON object, or null) replace fields of `self`, then the result is
    /// checked.
    pub fn with(&self, overrides: &serde_json::Value) -> Result<PipelineOptions, PipelineError> {
        let mut merged = serde_json::to_value(self).expect("options serialize");
        match overrides {
            serde_json::Value::Null => {}
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    merged[key] = value.clone();
                }
            }
            _ => return Err(PipelineError::Invalid("options must be a JSON object".into())),
        }
        let options: PipelineOptions =
            serde_json::from_value(merged).map_err(|e| PipelineError::Invalid(format!("options: {e}")))?;
        if options.candidates == 0 || options.k == 0 || options.max_votes == 0 || options.max_rounds == 0 {
            return Err(PipelineError::Invalid("candidates, k, max_votes and max_rounds must be at least 1".into()));
        }
        if !(0.0..=2.0).contains(&options.min_temperature)
            || !(options.min_temperature..=2.0).contains(&options.max_temperature)
        {
            return Err(PipelineError::Invalid(
                "temperatures must satisfy 0 <= min_temperature <= max_temperature <= 2".into(),
            ));
        }
        if !(0.0..=1.0).contains(&options.retry_heat) {
            return Err(PipelineError::Invalid("retry_heat must be between 0 and 1".into()));
        }
        // Candidates are voted on under letters A-Z; the rest bound the work one request can ask for.
        let bounds = [
            ("candidates", options.candidates as u64, 26),
            ("max_candidates", options.max_candidates as u64, 26),
            ("max_votes", options.max_votes as u64, 64),
            ("max_rounds", options.max_rounds as u64, 10),
            ("replans", options.replans as u64, 5),
            ("coder_max_tokens", options.coder_max_tokens as u64, 8192),
            ("context_tokens", options.context_tokens as u64, 65536),
            ("whole_file_lines", options.whole_file_lines as u64, 1000),
            ("probes", options.probes as u64, 20),
            ("test_timeout_secs", options.test_timeout_secs, 3600),
        ];
        if let Some((name, _, max)) = bounds.iter().find(|(_, value, max)| value > max) {
            return Err(PipelineError::Invalid(format!("{name} may be at most {max}")));
        }
        Ok(options)
    }

    /// `candidates` temperatures spread evenly from min to max.
    pub fn temperatures(&self) -> Vec<f32> {
        let n = self.candidates.max(1);
        if n == 1 {
            return vec![self.min_temperature];
        }
        let step = (self.max_temperature - self.min_temperature) / (n - 1) as f32;
        (0..n).map(|i| self.min_temperature + step * i as f32).collect()
    }

    /// The temperatures of a plan's code round `round` (from 1): `retry_heat` hotter per
    /// retry, up to 1.2 (or max_temperature, if higher).
    pub fn round_temperatures(&self, round: u32) -> Vec<f32> {
        let heat = self.retry_heat * round.saturating_sub(1) as f32;
        let cap = self.max_temperature.max(1.2);
        self.temperatures().into_iter().map(|t| (t + heat).min(cap)).collect()
    }
}

/// Whether the task is about tests (asks to add, fix or change them). Otherwise the test
/// files are the yardstick: plans drop steps on them and candidates cannot edit them.
pub(crate) fn about_tests(task: &str) -> bool {
    task.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| matches!(word, "test" | "tests" | "testing" | "pytest" | "unittest"))
}

/// What every stage works with.
pub(crate) struct Ctx<'a> {
    pub models: &'a dyn Models,
    pub tools: &'a Tools,
    pub tasks: &'a TaskStore,
    pub prompts: &'a Prompts,
    pub options: &'a PipelineOptions,
    pub task_id: &'a str,
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
    pub tools: Tools,
    pub tasks: TaskStore,
    pub prompts: Prompts,
    /// Tasks this process runs, each with the signal that stops it.
    pub running: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rounds_sample_hotter_up_to_a_cap() {
        let options = PipelineOptions::default();
        let close = |a: Vec<f32>, b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(options.round_temperatures(1), &[0.3, 0.4, 0.5, 0.6, 0.7]));
        assert!(close(options.round_temperatures(2), &[0.6, 0.7, 0.8, 0.9, 1.0]));
        assert!(close(options.round_temperatures(3), &[0.9, 1.0, 1.1, 1.2, 1.2]));
        let cold = options.with(&serde_json::json!({"retry_heat": 0.0})).unwrap();
        assert_eq!(cold.round_temperatures(3), cold.temperatures());
        assert!(options.with(&serde_json::json!({"retry_heat": 1.5})).is_err());
    }
}
