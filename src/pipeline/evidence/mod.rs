//! Evidence about candidates: scratch worktrees to try them in ([`worktree`]), the
//! workspace's tests run on them, and behaviour probes ([`probes`]). Git and the file
//! system block: that work runs on tokio's blocking pool.

pub mod outcome;
pub mod probes;
pub mod selection;
pub mod worktree;

pub use self::selection::{Baseline, Selection};
use self::worktree::Scratch;
pub use super::record::TestOutcome;
use crate::pipeline::{tuning, Ctx, PipelineError};
use crate::tools::run_tests;

/// Runs blocking work (git, files) on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PipelineError> + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| PipelineError::Workspace(format!("a worktree job failed: {e}")))?
}

/// How a step's candidates are tested: the selected tests, what they did on the tree
/// before any candidate, and each candidate's time limit (from that run).
#[derive(Debug, Clone)]
pub struct TestPlan {
    pub selection: Selection,
    pub baseline: Option<Baseline>,
    pub timeout_secs: u64,
}

impl TestPlan {
    /// The selected tests run once on the tree of `layers` (the workspace, then earlier
    /// steps' patches) before any candidate. None when the baseline timed out: tests that
    /// cannot finish untouched say nothing about a candidate (the whole suite, when nothing
    /// narrowed it down, gets [`tuning::WHOLE_SUITE_SECS`]).
    pub async fn prepare(
        ctx: &Ctx<'_>,
        layers: &[String],
        selection: Selection,
    ) -> Result<Option<TestPlan>, PipelineError> {
        let root = ctx.tools.workspace().root().to_path_buf();
        let layers = layers.to_vec();
        let scratch = blocking(move || {
            let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
            Scratch::create(&root, &layers)
        })
        .await?;
        let max = ctx.options.test_timeout_secs;
        // The whole suite serves only when it is quick: a long one says nothing specific
        // about the change, and would hold every candidate for its length.
        let limit = if selection.is_whole() { max.min(tuning::WHOLE_SUITE_SECS) } else { max };
        let ran = run_selected(ctx, &scratch, &selection, limit).await;
        blocking(move || {
            drop(scratch);
            Ok(())
        })
        .await?;
        let out = ran?;
        let baseline = Baseline {
            failed_tests: out.failed_tests,
            passed: out.counts.passed,
            seconds: out.duration_ms as f64 / 1000.0,
            timed_out: out.timed_out,
        };
        if baseline.timed_out {
            return Ok(None);
        }
        let timeout_secs = baseline.timeout_secs(max);
        Ok(Some(TestPlan { selection, baseline: Some(baseline), timeout_secs }))
    }
}

/// A candidate's tests, as they ran: see [`excuse`] for failures that were already there.
pub async fn run_tests(ctx: &Ctx<'_>, scratch: &Scratch, tests: &TestPlan) -> Result<TestOutcome, PipelineError> {
    let out = run_selected(ctx, scratch, &tests.selection, tests.timeout_secs).await?;
    Ok(TestOutcome {
        success: out.success,
        passed: out.counts.passed,
        failed: out.counts.failed,
        output_tail: out.output_tail,
        failed_tests: out.failed_tests,
    })
}

/// Runs that failed only where the baseline failed and no run of `outcomes` did better
/// count as passed: those failures were there before any change and nothing fixed them.
/// A failing test the task names ("so test_add fails") is what the task is for: never
/// excused.
pub fn excuse(tests: &TestPlan, task: &str, outcomes: &mut [&mut TestOutcome]) {
    let Some(baseline) = &tests.baseline else { return };
    let mut stubborn = baseline.stubborn(outcomes.iter().map(|o| o.failed_tests.as_slice()));
    stubborn.retain(|test| !selection::named_by(task, test));
    for outcome in outcomes.iter_mut() {
        if !outcome.success && selection::excused(&outcome.failed_tests, &stubborn) {
            outcome.success = true;
        }
    }
}

/// The selected tests in `scratch`, killed after `timeout_secs`.
pub async fn run_selected(
    ctx: &Ctx<'_>,
    scratch: &Scratch,
    selection: &Selection,
    timeout_secs: u64,
) -> Result<run_tests::Output, PipelineError> {
    let args = run_tests::Args {
        command: Some(selection.command),
        paths: selection.paths.clone(),
        package: selection.package.clone(),
        worktree: Some(scratch.path().display().to_string()),
        timeout_secs: Some(timeout_secs),
        max_output_bytes: Some(4000),
        ..Default::default()
    };
    Ok(ctx.tools.run_tests(args).await?)
}
