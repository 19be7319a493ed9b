//! Moves a task through the stages. The next step is always derived from the saved task
//! record (last completed stage and its output), so running a new task and resuming an
//! interrupted one are the same loop.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::code::{self, CodeOutput, Feedback};
use super::models::Models;
use super::plan::{self, ContextFile, PlanOutput};
use super::review::{self, Verdict};
use super::vote::{self, VoteOutput};
use super::worktree::{self, Scratch};
use super::{output, preprocess, Ctx, Event, Logged, PipelineError, PipelineOptions, Shared};
use crate::prompts::Prompts;
use crate::state::task::{CoderAttempt, ReviewIteration};
use crate::state::{Cancel, Stage, Task, TaskInput, TaskStatus, TaskStore};
use crate::tools::{Tools, Workspace};

/// The pipeline: cheap to clone, shared by the API, the CLI and background runs.
#[derive(Clone)]
pub struct Pipeline(Arc<Shared>);

/// How often a runner looks for a cancel request from another process.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// How long `cancel` waits for a running task to stop before answering.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Step {
    Preprocess,
    Plan {
        learned: Vec<String>,
        round_start: usize,
        replans: u32,
    },
    Code {
        round: u32,
        subtask: usize,
        patches: Vec<String>,
        feedback: Feedback,
    },
    Vote,
    Review,
    Output {
        failure: Option<String>,
    },
    /// The output is saved but the task was not marked finished (a crash in between).
    Finish {
        failure: Option<String>,
    },
}

fn saved<T: DeserializeOwned>(task: &Task, stage: Stage) -> Result<T, PipelineError> {
    let value = task
        .outputs
        .get(&stage)
        .ok_or_else(|| PipelineError::Invalid(format!("the task has no saved {stage} output")))?;
    serde_json::from_value(value.clone())
        .map_err(|e| PipelineError::Invalid(format!("the saved {stage} output is unreadable: {e}")))
}

/// What the coders are told after a rejection.
fn feedback(task: &Task, verdict: &Verdict) -> Feedback {
    Feedback {
        problems: verdict.problems.clone(),
        rejected_diff: Some(verdict.diff.clone()).filter(|d| !d.is_empty()),
        rejected_files: verdict.files.clone(),
        failing_tests: verdict.tests.as_ref().filter(|t| !t.success).map(|t| t.tail(30)),
        earlier: earlier_attempts(task),
    }
}

/// One line per earlier round from the task record: how its candidates fared.
fn earlier_attempts(task: &Task) -> Vec<String> {
    let mut rounds: Vec<u32> = task.attempts.iter().map(|a| a.round).collect();
    rounds.dedup();
    rounds
        .into_iter()
        .map(|round| {
            let of_round = || task.attempts.iter().filter(|a| a.round == round);
            let flagged = of_round().filter(|a| a.red_flag.is_some()).count();
            let total = of_round().count();
            // Records from before flags had kinds give their whole message.
            let mut reasons: Vec<&str> =
                of_round().filter_map(|a| a.red_flag_kind.as_deref().or(a.red_flag.as_deref())).collect();
            reasons.sort();
            reasons.dedup();
            format!("round {round}: {total} candidates, {flagged} red-flagged ({})", reasons.join(", "))
        })
        .collect()
}

/// The change to show when no review approved one: the latest reviewed change whose tests
/// passed, else the latest reviewed change at all (a later round may have had none).
fn best_reviewed(task: &Task) -> String {
    let reviewed = || task.reviews.iter().rev().filter(|r| !r.diff.is_empty());
    reviewed()
        .find(|r| r.tests_passed == Some(true))
        .or_else(|| reviewed().next())
        .map(|r| r.diff.clone())
        .unwrap_or_default()
}

/// What comes after the last completed stage.
fn next_step(task: &Task, options: &PipelineOptions) -> Result<Step, PipelineError> {
    Ok(match task.last_completed_stage {
        None => Step::Preprocess,
        Some(Stage::Preprocess) => Step::Plan { learned: Vec::new(), round_start: 0, replans: 0 },
        Some(Stage::Plan) => Step::Code {
            round: task.reviews.len() as u32 + 1,
            subtask: 0,
            patches: Vec::new(),
            feedback: Feedback::default(),
        },
        Some(Stage::Code) => Step::Vote,
        Some(Stage::Vote) => {
            let vote: VoteOutput = saved(task, Stage::Vote)?;
            let plan: PlanOutput = saved(task, Stage::Plan)?;
            if vote.reason.is_none() && vote.subtask + 1 < plan.plan.subtasks.len() {
                // In a retry round every sub-task hears why the last attempt was rejected.
                let feedback = match saved::<Verdict>(task, Stage::Review) {
                    Ok(verdict) if task.reviews.len() > plan.round_start => feedback(task, &verdict),
                    _ => Feedback::default(),
                };
                Step::Code { round: vote.round, subtask: vote.subtask + 1, patches: vote.patches, feedback }
            } else {
                Step::Review
            }
        }
        Some(Stage::Review) => {
            let verdict: Verdict = saved(task, Stage::Review)?;
            let plan: PlanOutput = saved(task, Stage::Plan)?;
            if verdict.approved {
                Step::Output { failure: None }
            } else if task.reviews.len().saturating_sub(plan.round_start) < options.max_rounds as usize {
                Step::Code {
                    round: verdict.round + 1,
                    subtask: 0,
                    patches: Vec::new(),
                    feedback: feedback(task, &verdict),
                }
            } else if plan.replans < options.replans {
                let learned = task.reviews.iter().flat_map(|r| r.problems.iter().cloned()).collect();
                Step::Plan { learned, round_start: task.reviews.len(), replans: plan.replans + 1 }
            } else {
                Step::Output { failure: Some(verdict.problems.join("; ")) }
            }
        }
        Some(Stage::Output) => Step::Finish { failure: saved::<output::Output>(task, Stage::Output)?.failure },
    })
}

impl Pipeline {
    pub fn new(
        models: Arc<dyn Models>,
        tools: Tools,
        tasks: TaskStore,
        prompts: Prompts,
        defaults: PipelineOptions,
    ) -> Pipeline {
        Pipeline(Arc::new(Shared { defaults, models, tools, tasks, prompts, running: Default::default() }))
    }

    pub fn tasks(&self) -> &TaskStore {
        &self.0.tasks
    }

    /// The task's events from position `from`, decoded, then live ones until it ends.
    pub fn follow(&self, id: &str, from: u64) -> impl futures::Stream<Item = Logged> + Send + 'static {
        use futures::StreamExt;
        self.0.tasks.follow(id.to_string(), from).map(|entry| Logged::from(&entry))
    }

    /// A queued task; `options` (JSON) override [`PipelineOptions`] field by field.
    pub async fn create(&self, text: &str, apply: bool, options: serde_json::Value) -> Result<Task, PipelineError> {
        self.0.defaults.with(&options)?;
        if text.trim().is_empty() {
            return Err(PipelineError::Invalid("the task is empty".into()));
        }
        let workspace = Some(self.0.tools.workspace().root().display().to_string());
        Ok(self.0.tasks.create(TaskInput { text: text.to_string(), workspace, apply, options }).await?)
    }

    /// Claims the task and runs it in the background; failures end up in its record and
    /// event log. Fails at once if the task cannot run (finished, or run elsewhere).
    pub async fn start(&self, id: &str) -> Result<tokio::task::JoinHandle<()>, PipelineError> {
        let task = self.claim(id).await?;
        let pipeline = self.clone();
        Ok(tokio::spawn(async move {
            let id = task.id.clone();
            if let Err(e) = pipeline.run_claimed(task).await {
                tracing::warn!(task = %id, error = %e, "task failed");
            }
        }))
    }

    /// Runs a new task, or resumes an interrupted one after its last completed stage,
    /// until it succeeds or fails.
    pub async fn run(&self, id: &str) -> Result<Task, PipelineError> {
        let task = self.claim(id).await?;
        self.run_claimed(task).await
    }

    async fn claim(&self, id: &str) -> Result<Task, PipelineError> {
        let tasks = &self.0.tasks;
        let task = tasks.get(id).await?.ok_or_else(|| PipelineError::Invalid(format!("no task `{id}`")))?;
        if matches!(task.status, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled) {
            return Err(PipelineError::Finished { id: id.to_string(), status: task.status });
        }
        let root = self.0.tools.workspace().root().display().to_string();
        if let Some(ws) = task.input.workspace.as_deref().filter(|ws| *ws != root) {
            return Err(PipelineError::Invalid(format!(
                "task `{id}` works on {ws}, not {root}; run it with --workspace {ws}"
            )));
        }
        if !tasks.claim(id).await? {
            return Err(PipelineError::Busy(id.to_string()));
        }
        Ok(task)
    }

    async fn run_claimed(&self, mut task: Task) -> Result<Task, PipelineError> {
        let tasks = self.0.tasks.clone();
        let id = task.id.clone();
        // Stops renewing when the run ends, however it ends (an aborted run included).
        let _renew = AbortOnDrop({
            let (tasks, id) = (tasks.clone(), id.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(20)).await;
                    if let Err(e) = tasks.renew_claim(&id).await {
                        tracing::warn!(task = %id, error = %e, "renewing the task claim failed");
                    }
                }
            })
        });
        let stop = Arc::new(tokio::sync::Notify::new());
        self.0.running.lock().expect("running lock").insert(id.clone(), stop.clone());
        // A cancel drops the run where it stands: its generations stop at the next decode
        // step and its test runs are killed with their process group (see `tools`).
        let result = tokio::select! {
            result = self.run_task(&mut task) => result,
            reason = self.cancel_signal(&id, &stop) => Err(PipelineError::Cancelled(reason)),
        };
        self.0.running.lock().expect("running lock").remove(&id);
        let result = match result {
            Err(PipelineError::Cancelled(reason)) => {
                // The record as last saved; the run's in-memory copy may be mid-update.
                let mut saved = tasks.get(&id).await?.unwrap_or(task);
                tasks.cancelled(&mut saved, &reason).await?;
                tracing::info!(task = %id, %reason, "task cancelled");
                task = saved;
                Ok(())
            }
            other => other,
        };
        tasks.release(&id).await?;
        result.map(|()| task)
    }

    /// Resolves when the task is to stop: signalled in this process, or requested through
    /// the state store (another process: `quorum tasks cancel`, another instance).
    async fn cancel_signal(&self, id: &str, stop: &tokio::sync::Notify) -> String {
        loop {
            tokio::select! {
                _ = stop.notified() => return "cancelled on request".into(),
                _ = tokio::time::sleep(CANCEL_POLL) => {
                    if self.0.tasks.cancel_requested(id).await.unwrap_or(false) {
                        return "cancelled on request".into();
                    }
                }
            }
        }
    }

    /// Stops a task: at once if it runs in this process, through the state store if it runs
    /// in another; a task that runs nowhere (queued, interrupted) is marked cancelled. Waits
    /// up to a few seconds for a running task to stop and returns its record.
    pub async fn cancel(&self, id: &str) -> Result<Task, PipelineError> {
        let tasks = &self.0.tasks;
        match tasks.cancel(id).await? {
            Cancel::Done(task) => return Ok(*task),
            Cancel::Finished(status) => return Err(PipelineError::Finished { id: id.to_string(), status }),
            Cancel::Unknown => return Err(PipelineError::Invalid(format!("no task `{id}`"))),
            Cancel::Requested => {}
        }
        if let Some(stop) = self.0.running.lock().expect("running lock").get(id) {
            stop.notify_one();
        }
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        loop {
            let task = tasks.get(id).await?.ok_or_else(|| PipelineError::Invalid(format!("no task `{id}`")))?;
            if !task.status.is_active() || tokio::time::Instant::now() >= deadline {
                return Ok(task);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn run_task(&self, task: &mut Task) -> Result<(), PipelineError> {
        let tasks = &self.0.tasks;
        if task.status == TaskStatus::Interrupted {
            let resume_after = task.last_completed_stage;
            let (kind, data) = Event::Resumed { after: resume_after }.into_parts();
            tasks.event(&task.id, &kind, None, data).await?;
        }
        let options = self.0.defaults.with(&task.input.options)?;
        match self.drive(task, &options).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tasks.finish(task, Some(e.to_string())).await?;
                Err(e)
            }
        }
    }

    async fn drive(&self, task: &mut Task, options: &PipelineOptions) -> Result<(), PipelineError> {
        let shared = &*self.0;
        let id = task.id.clone();
        let ctx = Ctx {
            models: shared.models.as_ref(),
            tools: &shared.tools,
            tasks: &shared.tasks,
            prompts: &shared.prompts,
            options,
            task_id: &id,
        };
        let tasks = &shared.tasks;
        loop {
            let text = task
                .outputs
                .get(&Stage::Preprocess)
                .and_then(|o| o["text"].as_str())
                .unwrap_or(&task.input.text)
                .to_string();
            match next_step(task, options)? {
                Step::Preprocess => {
                    tasks.start_stage(task, Stage::Preprocess).await?;
                    let input = task.input.clone();
                    let out = preprocess::run(&ctx, &input).await?;
                    tasks.finish_stage(task, Stage::Preprocess, out).await?;
                }
                Step::Plan { learned, round_start, replans } => {
                    tasks.start_stage(task, Stage::Plan).await?;
                    let out = plan::run(&ctx, &text, &learned, round_start, replans).await?;
                    tasks.finish_stage(task, Stage::Plan, out).await?;
                }
                Step::Code { round, subtask, patches, feedback } => {
                    tasks.start_stage(task, Stage::Code).await?;
                    let plan: PlanOutput = saved(task, Stage::Plan)?;
                    let out = code::run(&ctx, &text, &plan, round, subtask, patches, &feedback).await?;
                    task.attempts.extend(out.candidates.iter().map(|c| CoderAttempt {
                        round,
                        candidate: c.index as u32,
                        diff: c.diff.clone(),
                        red_flag: c.red_flag.as_ref().map(ToString::to_string),
                        red_flag_kind: c.red_flag.as_ref().map(|f| f.reason().to_string()),
                    }));
                    tasks
                        .finish_stage(task, Stage::Code, serde_json::to_value(out).expect("outputs serialize"))
                        .await?;
                }
                Step::Vote => {
                    tasks.start_stage(task, Stage::Vote).await?;
                    let plan: PlanOutput = saved(task, Stage::Plan)?;
                    let code: CodeOutput = saved(task, Stage::Code)?;
                    let step = plan.plan.subtasks.get(code.subtask).map(|s| s.description.clone()).unwrap_or_default();
                    let out = vote::run(&ctx, &text, &step, plan.plan.is_last(code.subtask), &code).await?;
                    tasks
                        .finish_stage(task, Stage::Vote, serde_json::to_value(out).expect("outputs serialize"))
                        .await?;
                }
                Step::Review => {
                    tasks.start_stage(task, Stage::Review).await?;
                    let vote: VoteOutput = saved(task, Stage::Vote)?;
                    let verdict = match &vote.reason {
                        // Nothing to review: the round failed at the vote.
                        Some(reason) if vote.winner.is_none() => {
                            let v = Verdict {
                                round: vote.round,
                                approved: false,
                                problems: vec![reason.clone()],
                                diff: String::new(),
                                files: Vec::new(),
                                tests: None,
                            };
                            let event = Event::Verdict {
                                round: v.round,
                                approved: false,
                                problems: v.problems.clone(),
                                skipped: true,
                            };
                            ctx.emit(Stage::Review, event).await?;
                            v
                        }
                        _ => {
                            let (diff, files, tests) = self.combined(&ctx, &vote.patches).await?;
                            review::run(&ctx, &text, vote.round, diff, files, tests).await?
                        }
                    };
                    task.reviews.push(ReviewIteration {
                        round: verdict.round,
                        approved: verdict.approved,
                        problems: verdict.problems.clone(),
                        diff: verdict.diff.clone(),
                        tests_passed: verdict.tests.as_ref().map(|t| t.success),
                    });
                    tasks
                        .finish_stage(task, Stage::Review, serde_json::to_value(verdict).expect("outputs serialize"))
                        .await?;
                }
                Step::Output { failure } => {
                    tasks.start_stage(task, Stage::Output).await?;
                    let plan: PlanOutput = saved(task, Stage::Plan)?;
                    let vote: Option<VoteOutput> = saved(task, Stage::Vote).ok();
                    // The last verdict carries the change to show, approved or the best there was.
                    let verdict: Option<Verdict> = saved(task, Stage::Review).ok();
                    let diff = match (&failure, &verdict) {
                        (None, Some(v)) => v.diff.clone(),
                        _ => best_reviewed(task),
                    };
                    let out = output::run(&ctx, &plan, vote.as_ref(), verdict, diff, task.input.apply, failure.clone())
                        .await?;
                    tasks
                        .finish_stage(task, Stage::Output, serde_json::to_value(out).expect("outputs serialize"))
                        .await?;
                    tasks.finish(task, failure).await?;
                    return Ok(());
                }
                Step::Finish { failure } => {
                    tasks.finish(task, failure).await?;
                    return Ok(());
                }
            }
        }
    }

    /// The round's sub-task patches as one diff against the workspace, the changed files
    /// as they end up (what the reviewer reads the diff against), and the tests run on them.
    async fn combined(
        &self,
        ctx: &Ctx<'_>,
        patches: &[String],
    ) -> Result<(String, Vec<ContextFile>, Option<code::TestOutcome>), PipelineError> {
        let root = ctx.tools.workspace().root().to_path_buf();
        let (scratch, diff, changed) = {
            let (root, patches) = (root.clone(), patches.to_vec());
            code::blocking(move || {
                let scratch = Scratch::create(&root, &[&worktree::workspace_patch(&root)?])?;
                for patch in &patches {
                    scratch.apply(patch)?;
                }
                let (diff, changed) = (scratch.diff()?, scratch.changed()?);
                Ok((scratch, diff, changed))
            })
            .await?
        };
        let tree = Workspace::new(scratch.path()).map_err(PipelineError::Tool)?;
        let files = plan::fit_files(ctx, &tree, &changed, ctx.options.context_tokens / 2);
        let tests = if ctx.has_tests() { Some(code::run_tests(ctx, &scratch).await?) } else { None };
        code::blocking(move || {
            drop(scratch);
            Ok(())
        })
        .await?;
        Ok((diff, files, tests))
    }
}
