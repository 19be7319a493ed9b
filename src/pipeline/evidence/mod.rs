//! Evidence about candidates: scratch worktrees to try them in ([`worktree`]), the
//! workspace's tests run on them, and behaviour probes ([`probes`]). Git and the file
//! system block: that work runs on tokio's blocking pool.

pub mod probes;
pub mod worktree;

use serde_json::json;

use self::worktree::Scratch;
pub use super::record::TestOutcome;
use crate::pipeline::{Ctx, PipelineError};

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
    let args = json!({"worktree": scratch.path().display().to_string(), "filter": filter, "timeout_secs": timeout_secs, "max_output_bytes": 4000});
    let out = ctx.tools.call("run_tests", args).await?;
    Ok(TestOutcome {
        success: out["success"].as_bool().unwrap_or(false),
        passed: out["passed"].as_u64(),
        failed: out["failed"].as_u64(),
        output_tail: out["output_tail"].as_str().unwrap_or_default().to_string(),
    })
}
