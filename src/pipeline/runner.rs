//! Moves a task through the stages: the run record says what comes next ([`next_step`]),
//! a stage does it, and the record is saved at every transition. The runner itself does
//! no stage work; it claims tasks, renews the claim and stops them on request.

use std::sync::Arc;

use super::models::Models;
use super::record::Verdict;
use super::run::{next_step, Run, Step};
use super::stages::{code, output, plan, preprocess, probe, review, vote};
use super::{Budget, Ctx, Event, Logged, PipelineError, PipelineOptions, Setup, Shared};
use crate::state::{Cancel, Stage, Task, TaskInput, TaskStatus, TaskStore};
use crate::tools::{Tools, Workspaces};

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

impl Pipeline {
    pub(super) fn new(models: Arc<dyn Models>, workspaces: Workspaces, tasks: TaskStore, setup: Setup) -> Pipeline {
        let Setup { prompts, options: defaults } = setup;
        Pipeline(Arc::new(Shared { defaults, models, workspaces, tasks, prompts, running: Default::default() }))
    }

    /// The workspaces tasks may work on.
    pub fn workspaces(&self) -> &Workspaces {
        &self.0.workspaces
    }

    pub fn models(&self) -> &Arc<dyn Models> {
        &self.0.models
    }

    pub fn tasks(&self) -> &TaskStore {
        &self.0.tasks
    }

    /// The task's events from position `from`, decoded, then live ones until it ends.
    pub fn follow(&self, id: &str, from: u64) -> impl futures::Stream<Item = Logged> + Send + 'static {
        use futures::StreamExt;
        self.0.tasks.follow(id.to_string(), from).map(|entry| Logged::from(&entry))
    }

    /// A queued task on the default workspace; `options` (JSON) override
    /// [`PipelineOptions`] field by field. The task keeps the options it was created with,
    /// whatever the defaults become.
    pub async fn create(&self, text: &str, apply: bool, options: serde_json::Value) -> Result<Task, PipelineError> {
        self.create_on(self.0.workspaces.default_tools(), text, apply, options).await
    }

    /// [`Pipeline::create`] on the workspace of `tools` (one of [`Pipeline::workspaces`]),
    /// which the task keeps: it runs and resumes there.
    pub async fn create_on(
        &self,
        tools: &Tools,
        text: &str,
        apply: bool,
        options: serde_json::Value,
    ) -> Result<Task, PipelineError> {
        let options = serde_json::to_value(self.0.defaults.with(&options)?).expect("options serialize");
        if text.trim().is_empty() {
            return Err(PipelineError::Invalid("the task is empty".into()));
        }
        let workspace = Some(tools.workspace().root().display().to_string());
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
        self.tools_of(&task)?;
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

    /// The tools of the workspace the task was created on, if this pipeline may work there.
    fn tools_of(&self, task: &Task) -> Result<Tools, PipelineError> {
        let ws = task.input.workspace.as_deref().unwrap_or_default();
        self.0.workspaces.open(ws).map_err(|e| {
            PipelineError::Invalid(format!(
                "task `{}` works on {ws}, which this pipeline cannot open ({e}); run it with --workspace {ws}",
                task.id
            ))
        })
    }

    async fn drive(&self, task: &mut Task, options: &PipelineOptions) -> Result<(), PipelineError> {
        let shared = &*self.0;
        let id = task.id.clone();
        let tools = self.tools_of(task)?;
        let ctx = Ctx {
            models: shared.models.as_ref(),
            tools: &tools,
            tasks: &shared.tasks,
            prompts: &shared.prompts,
            options,
            task_id: &id,
            budget: Budget::new(options.time_budget_secs),
            seen: Default::default(),
        };
        let tasks = &shared.tasks;
        let mut run = Run::load(task)?;
        // The step the budget's end forces instead of the record's next one.
        let mut forced = None;
        loop {
            let mut step = forced.take().unwrap_or_else(|| next_step(&run, options));
            if let Some(cheaper) = within_budget(&ctx, &run, &step).await? {
                step = cheaper;
            }
            let Some(stage) = step.stage() else {
                let Step::Finish { failure } = step else { unreachable!("only Finish has no stage") };
                tasks.finish(task, failure).await?;
                return Ok(());
            };
            tasks.start_stage(task, stage).await?;
            let failed = match ctx.budget.left().filter(|_| !matches!(step, Step::Output { .. })) {
                None => take_step(&ctx, &mut run, step, task).await?,
                Some(left) => match tokio::time::timeout(left, take_step(&ctx, &mut run, step, task)).await {
                    Ok(failed) => failed?,
                    // The stage's generations and test runs stop with its dropped future.
                    Err(_) => {
                        ctx.emit(stage, ctx.budget.cut(&format!("{stage} stopped: the time budget is spent"))).await?;
                        let why = format!("the time budget is spent in {stage}");
                        if run.plan().is_none() || run.best_change().is_empty() {
                            tasks.finish(task, Some(format!("{why}, before any change was chosen"))).await?;
                            return Ok(());
                        }
                        forced = Some(Step::Output {
                            failure: Some(format!("{why}; the change was not reviewed to the end")),
                        });
                        continue;
                    }
                },
            };
            let output = run.store(task, stage);
            tasks.finish_stage(task, stage, output).await?;
            if let Some(failure) = failed {
                tasks.finish(task, failure).await?;
                return Ok(());
            }
        }
    }
}

/// Does one step on the run record; `Some(failure)` when the task ends with it.
async fn take_step(
    ctx: &Ctx<'_>,
    run: &mut Run,
    step: Step,
    task: &Task,
) -> Result<Option<Option<String>>, PipelineError> {
    let options = ctx.options;
    let text = run.text().to_string();
    let mut failed = None;
    match step {
        Step::Preprocess => run.text = Some(preprocess::run(ctx, &task.input).await?),
        Step::Plan { learned, replans } => {
            let round_start = run.verdicts().count();
            let mut plan = plan::run(ctx, &text, &learned, round_start, replans).await?;
            if !options.plan_only {
                plan.probes = probe::run(ctx, &text, &plan.plan, &plan.context).await?;
            }
            run.add_plan(plan);
            failed = options.plan_only.then_some(None);
        }
        Step::Code { round, subtask, patches, feedback } => {
            let plan = run.plan().ok_or_else(|| missing("a plan"))?;
            let code = code::run(ctx, &text, plan, round, subtask, patches, &feedback).await?;
            run.add_code(code);
        }
        Step::Vote => {
            let (plan, current) = (run.plan(), run.current());
            let (plan, current) = plan.zip(current).ok_or_else(|| missing("candidates"))?;
            let vote = vote::run(ctx, &text, plan, &current.code).await?;
            run.set_vote(vote);
        }
        Step::Review => {
            let vote = run.current().and_then(|s| s.vote.as_ref()).ok_or_else(|| missing("a vote"))?;
            let rejected: Vec<&Verdict> = run.rejected().collect();
            let verdict = review::run(ctx, &text, vote, &rejected).await?;
            run.set_verdict(verdict);
        }
        Step::Output { failure } => {
            run.output = Some(output::run(ctx, run, task.input.apply, failure.clone()).await?);
            failed = Some(failure);
        }
        Step::Finish { .. } => unreachable!("handled by drive"),
    }
    Ok(failed)
}

/// Past 70% of the budget, a round's later steps are left out (the steps done so far are
/// reviewed), and a rejected round ends the task with what it has instead of another
/// round or plan.
async fn within_budget(ctx: &Ctx<'_>, run: &Run, step: &Step) -> Result<Option<Step>, PipelineError> {
    if !ctx.budget.spent(BUDGET_LAST_ROUND) {
        return Ok(None);
    }
    if matches!(step, Step::Code { subtask: 1.., patches, .. } if !patches.is_empty()) {
        ctx.emit(
            Stage::Code,
            ctx.budget.cut("the plan's later steps are left out: the steps done so far are reviewed"),
        )
        .await?;
        return Ok(Some(Step::Review));
    }
    let again = matches!(step, Step::Code { subtask: 0, .. } | Step::Plan { .. }) && run.verdicts().count() > 0;
    if !again {
        return Ok(None);
    }
    let problems: Vec<String> = run.verdicts().last().map(|v| v.problems.clone()).unwrap_or_default();
    ctx.emit(Stage::Review, ctx.budget.cut("no further round: the best change so far is the answer")).await?;
    Ok(Some(Step::Output { failure: Some(format!("the time budget is spent; {}", problems.join("; "))) }))
}

/// The share of the budget after which no further round starts.
const BUDGET_LAST_ROUND: f64 = 0.7;

/// A run record that lacks what its next step needs (written by a broken version).
fn missing(what: &str) -> PipelineError {
    PipelineError::Invalid(format!("the run record has no {what}"))
}
