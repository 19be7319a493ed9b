//! Evidence about candidates: scratch worktrees to try them in ([`worktree`]), the
//! workspace's tests run on them, and behaviour probes ([`probes`]), each run once a tree
//! for a task ([`memo`]). Git and the file system block: that work runs on tokio's
//! blocking pool.

pub mod memo;
pub mod outcome;
pub mod probes;
pub mod selection;
pub mod worktree;

use self::memo::{Memo, TreeId};
pub use self::selection::{Baseline, Selection};
use self::worktree::Scratch;
pub use super::record::TestOutcome;
use crate::pipeline::{tuning, Ctx, PipelineError};
use crate::tools::{run_tests, ToolError};

/// Runs blocking work (git, files) on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PipelineError> + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| PipelineError::Workspace(format!("a worktree job failed: {e}")))?
}

/// What a task's run has seen on its trees: test runs by tree and selection, what the
/// probes did by tree and probes.
#[derive(Default)]
pub struct Seen {
    pub tests: Memo<run_tests::Output>,
    pub probes: Memo<Option<Vec<outcome::Outcome>>>,
}

/// How a step's candidates are tested: the selected tests, what they did on the tree
/// before any candidate, and each candidate's time limit (from that run).
#[derive(Debug, Clone)]
pub struct TestPlan {
    pub selection: Selection,
    pub baseline: Baseline,
    pub timeout_secs: u64,
}

/// Why a step's candidates go untested.
#[derive(Debug, Clone, PartialEq)]
pub enum Untested {
    /// The tests did not finish on the tree before any change.
    TimedOut,
    /// The runner is not installed.
    NoRunner(String),
}

impl Untested {
    /// What the step's event says (None: it timed out, which the event's missing time
    /// limit says).
    pub fn reason(&self) -> Option<String> {
        match self {
            Untested::TimedOut => None,
            Untested::NoRunner(message) => Some(message.clone()),
        }
    }
}

impl TestPlan {
    /// The selected tests run once on the tree of `layers` (the workspace, then earlier
    /// steps' patches) before any candidate. Untested when that run timed out or its runner
    /// is missing: tests that cannot run untouched say nothing about a candidate (the whole
    /// suite, when nothing narrowed it down, gets [`tuning::WHOLE_SUITE_SECS`]). Failures
    /// that earlier steps' patches brought (a rename that breaks its importers) are not
    /// already there: they are the later step's to fix, and no candidate is excused them.
    pub async fn prepare(
        ctx: &Ctx<'_>,
        layers: &[String],
        selection: Selection,
    ) -> Result<Result<TestPlan, Untested>, PipelineError> {
        let max = ctx.options.test_timeout_secs;
        // The whole suite serves only when it is quick: a long one says nothing specific
        // about the change, and would hold every candidate for its length.
        let limit = if selection.is_whole() { max.min(tuning::WHOLE_SUITE_SECS) } else { max };
        let out = match run_on(ctx, layers, &selection, limit).await {
            Err(PipelineError::Tool(ToolError::Unavailable(message))) => return Ok(Err(Untested::NoRunner(message))),
            ran => ran?,
        };
        let not_run = ran_nothing(&out).then(|| last_line(&out.output_tail));
        let mut failed_tests = out.failed_tests;
        let mut passed_untouched = None;
        if layers.len() > 1 && !failed_tests.is_empty() {
            let before = run_on(ctx, &layers[..1], &selection, limit).await?;
            failed_tests.retain(|t| before.failed_tests.contains(t));
            passed_untouched = before.counts.passed;
        }
        let baseline = Baseline {
            not_run,
            failed_tests,
            passed: out.counts.passed,
            passed_untouched,
            seconds: out.duration_ms as f64 / 1000.0,
            timed_out: out.timed_out,
        };
        if baseline.timed_out {
            return Ok(Err(Untested::TimedOut));
        }
        let timeout_secs = baseline.timeout_secs(max);
        Ok(Ok(TestPlan { selection, baseline, timeout_secs }))
    }
}

/// The selected tests on a scratch tree of `layers`, killed after `timeout_secs` (or as
/// they ran on that tree before).
async fn run_on(
    ctx: &Ctx<'_>,
    layers: &[String],
    selection: &Selection,
    timeout_secs: u64,
) -> Result<run_tests::Output, PipelineError> {
    let (root, layers) = (ctx.tools.workspace().root().to_path_buf(), layers.to_vec());
    let tree = {
        let (root, layers) = (root.clone(), layers.clone());
        blocking(move || worktree::tree_of(&root, &layers)).await?
    };
    let run = || async {
        let scratch = blocking(move || {
            let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
            Scratch::create(&root, &layers)
        })
        .await?;
        let ran = run_selected(ctx, &scratch, selection, timeout_secs, false).await;
        blocking(move || {
            drop(scratch);
            Ok(())
        })
        .await?;
        ran
    };
    ctx.seen.tests.get_or_make((tree, selection), |out| within(out, timeout_secs), run).await
}

/// Whether a run that was kept tells what one limited to `timeout_secs` would: it ended
/// within that limit (one that was killed may have ended with more time).
fn within(out: &run_tests::Output, timeout_secs: u64) -> bool {
    !out.timed_out && out.duration_ms <= timeout_secs * 1000
}

/// A candidate's tests, as they ran on `tree` (the scratch's files: a tree run before is
/// not run again; see [`excuse`] for failures that were already there).
/// None when the run stopped before any test, as the baseline's did: that says nothing of
/// the candidate (`python3 -m pytest` without pytest fails the same way for every one).
/// Under a time budget a run ends before its last tenth, so that the stage does not end
/// with it; one stopped there says nothing of the candidate either.
pub async fn run_tests(
    ctx: &Ctx<'_>,
    scratch: &Scratch,
    tree: TreeId,
    tests: &TestPlan,
) -> Result<Option<TestOutcome>, PipelineError> {
    let left = ctx.budget.until(tuning::BUDGET_TESTS_END).map(|d| d.as_secs().max(1));
    let limit = left.map_or(tests.timeout_secs, |left| left.min(tests.timeout_secs));
    let run = || run_selected(ctx, scratch, &tests.selection, limit, false);
    let out = ctx.seen.tests.get_or_make((tree, &tests.selection), |out| within(out, limit), run).await?;
    if (tests.baseline.not_run.is_some() && ran_nothing(&out)) || (out.timed_out && limit < tests.timeout_secs) {
        return Ok(None);
    }
    Ok(Some(TestOutcome {
        success: out.success,
        passed: out.counts.passed,
        failed: out.counts.failed,
        output_tail: out.output_tail,
        failed_tests: out.failed_tests,
    }))
}

/// A failed run that counted and named no test: it stopped before running any.
fn ran_nothing(out: &run_tests::Output) -> bool {
    !out.success && out.counts.passed.is_none() && out.counts.failed.is_none() && out.failed_tests.is_empty()
}

fn last_line(output: &str) -> String {
    let line = output.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no output");
    line.chars().take(200).collect()
}

/// Runs that failed only where the baseline failed and no run of `outcomes` did better
/// count as passed: those failures were there before any change and nothing fixed them.
/// A failing test the task names ("so test_add fails") is what the task is for: never
/// excused.
pub fn excuse(tests: &TestPlan, task: &str, outcomes: &mut [&mut TestOutcome]) {
    let baseline = &tests.baseline;
    let mut stubborn = baseline.stubborn(outcomes.iter().map(|o| o.failed_tests.as_slice()));
    stubborn.retain(|test| !selection::named_by(task, test));
    for outcome in outcomes.iter_mut() {
        if !outcome.success && selection::excused(&outcome.failed_tests, &stubborn) {
            outcome.success = true;
        }
    }
}

/// The selected tests in `scratch`, killed after `timeout_secs`; `bare` for quorum's own
/// test files ([`run_tests::Args::bare`]).
pub async fn run_selected(
    ctx: &Ctx<'_>,
    scratch: &Scratch,
    selection: &Selection,
    timeout_secs: u64,
    bare: bool,
) -> Result<run_tests::Output, PipelineError> {
    let args = run_tests::Args {
        command: Some(selection.command),
        paths: selection.paths.clone(),
        package: selection.package.clone(),
        names: selection.names.clone(),
        worktree: Some(scratch.path().display().to_string()),
        timeout_secs: Some(timeout_secs),
        max_output_bytes: Some(4000),
        bare,
        ..Default::default()
    };
    Ok(ctx.tools.run_tests(args).await?)
}
