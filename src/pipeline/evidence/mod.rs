//! Evidence about candidates: scratch worktrees to try them in ([`worktree`]), the
//! workspace's tests run on them, and behaviour probes ([`probes`]). Git and the file
//! system block: that work runs on tokio's blocking pool.

pub mod outcome;
pub mod probes;
pub mod worktree;

use self::worktree::Scratch;
pub use super::record::TestOutcome;
use crate::pipeline::{Ctx, PipelineError};
use crate::tools::run_tests;

/// Runs blocking work (git, files) on tokio's blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PipelineError> + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| PipelineError::Workspace(format!("a worktree job failed: {e}")))?
}

pub async fn run_tests(ctx: &Ctx<'_>, scratch: &Scratch) -> Result<TestOutcome, PipelineError> {
    run_tests_matching(ctx, scratch, None, ctx.options.test_timeout_secs).await
}

/// The tests whose name matches `filter` (all without one), killed after `timeout_secs`.
pub async fn run_tests_matching(
    ctx: &Ctx<'_>,
    scratch: &Scratch,
    filter: Option<&str>,
    timeout_secs: u64,
) -> Result<TestOutcome, PipelineError> {
    let args = run_tests::Args {
        worktree: Some(scratch.path().display().to_string()),
        filter: filter.map(str::to_string),
        timeout_secs: Some(timeout_secs),
        max_output_bytes: Some(4000),
        ..Default::default()
    };
    let out = ctx.tools.run_tests(args).await?;
    Ok(TestOutcome {
        success: out.success,
        passed: out.counts.passed,
        failed: out.counts.failed,
        output_tail: out.output_tail,
    })
}
