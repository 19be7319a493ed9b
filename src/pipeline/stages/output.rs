//! Stage 6: the reviewed diff against the workspace (the approved one, or the best
//! reviewed when none was approved), a short explanation, the vote tally and the review.
//! The workspace is changed only when the task asked for it (`apply`).

use crate::pipeline::record::{Output, PlanOutput, Verdict};
use serde_json::json;

use crate::pipeline::evidence::{blocking, worktree};
use crate::pipeline::run::Run;
use crate::pipeline::{Ctx, Event, PipelineError};
use crate::state::Stage;

pub fn explain(plan: &PlanOutput, verdict: Option<&Verdict>, failure: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(why) = failure {
        text.push_str(&format!("Not approved: {why}\n\nThe best candidate is below.\n\n"));
    }
    let steps: Vec<String> = plan.plan.subtasks.iter().map(|s| format!("- {}", s.description.trim())).collect();
    text.push_str(&format!("Plan:\n{}\n", steps.join("\n")));
    if !plan.plan.verify.trim().is_empty() {
        text.push_str(&format!("Check: {}\n", plan.plan.verify.trim()));
    }
    if let Some(v) = verdict {
        if let Some(t) = &v.tests {
            text.push_str(&format!("Tests: {}\n", if t.success { "pass" } else { "fail" }));
        }
        text.push_str(if v.approved { "Review: approved.\n" } else { "Review: rejected.\n" });
    }
    text
}

/// `patches` as one diff against the workspace (one is that already).
async fn combined_diff(ctx: &Ctx<'_>, mut patches: Vec<String>) -> Result<String, PipelineError> {
    if patches.len() <= 1 {
        return Ok(patches.pop().unwrap_or_default());
    }
    let root = ctx.tools.workspace().root().to_path_buf();
    blocking(move || worktree::combine(&root, &patches)?.diff()).await
}

/// The output of `run`, failed when `failure` says why.
pub async fn run(ctx: &Ctx<'_>, run: &Run, apply: bool, failure: Option<String>) -> Result<Output, PipelineError> {
    let plan = run.plan().ok_or_else(|| PipelineError::Invalid("the output stage needs a plan".into()))?;
    let vote = run.vote();
    // The last verdict carries the change to show, approved or the best there was.
    let verdict = run.verdicts().last().cloned();
    let diff = match (&failure, &verdict) {
        (None, Some(v)) => v.diff.clone(),
        _ => combined_diff(ctx, run.best_change()).await?,
    };
    let explanation = explain(plan, verdict.as_ref(), failure.as_deref());
    let tally = vote.map(|v| json!({"ballot": v.ballot, "choices": v.choices, "counts": v.counts, "decided_by": v.decided_by, "winner": v.winner})).unwrap_or(json!(null));
    let mut applied = false;
    if apply && failure.is_none() && !diff.trim().is_empty() {
        worktree::apply_to(ctx.tools.workspace().root(), &diff)?;
        applied = true;
    }
    let event = Event::Diff { diff: diff.clone(), explanation: explanation.clone(), applied };
    ctx.emit(Stage::Output, event).await?;
    Ok(Output { diff, explanation, tally, review: verdict, applied, failure })
}
