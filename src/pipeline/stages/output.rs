//! Stage 6: the reviewed diff against the workspace (the approved one, or the best
//! reviewed when none was approved), a short explanation, the vote tally and the review.
//! The workspace is changed only when the task asked for it (`apply`).

use crate::pipeline::record::{Output, PlanOutput, Verdict};
use serde_json::json;

use crate::pipeline::evidence::{blocking, worktree};
use crate::pipeline::run::Run;
use crate::pipeline::{Ctx, Event, PipelineError};
use crate::state::Stage;

/// What the output says of the run; `done` is how many of the plan's steps the change
/// went through (fewer where the time budget left the later ones out, or a step's vote
/// failed).
pub fn explain(plan: &PlanOutput, done: usize, verdict: Option<&Verdict>, failure: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(why) = failure {
        text.push_str(&format!("Not approved: {why}\n\nThe best candidate is below.\n\n"));
    }
    let line = |s: &crate::pipeline::record::Subtask| format!("- {}", s.description.trim());
    let (coded, left) = plan.plan.subtasks.split_at(done.min(plan.plan.subtasks.len()));
    text.push_str(&format!("Plan:\n{}\n", coded.iter().map(line).collect::<Vec<_>>().join("\n")));
    if !left.is_empty() {
        let left: Vec<String> = left.iter().map(line).collect();
        text.push_str(&format!("Not in this change:\n{}\n", left.join("\n")));
    }
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

/// `patches` as one diff against the workspace (one is that already). Where they no
/// longer combine (the workspace changed under the task), the first, which applies to
/// the workspace as the task found it.
async fn combined_diff(ctx: &Ctx<'_>, patches: Vec<String>) -> String {
    if patches.len() <= 1 {
        return patches.into_iter().next().unwrap_or_default();
    }
    let root = ctx.tools.workspace().root().to_path_buf();
    let first = patches[0].clone();
    blocking(move || worktree::combine(&root, &patches)?.diff()).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the steps' patches do not combine; the output is the first");
        first
    })
}

/// The output of `run`, failed when `failure` says why.
pub async fn run(ctx: &Ctx<'_>, run: &Run, apply: bool, failure: Option<String>) -> Result<Output, PipelineError> {
    let plan = run.plan().ok_or_else(|| PipelineError::Invalid("the output stage needs a plan".into()))?;
    let vote = run.vote();
    // The last verdict carries the change to show, approved or the best there was.
    let verdict = run.verdicts().last().cloned();
    let diff = match (&failure, &verdict) {
        (None, Some(v)) => v.diff.clone(),
        _ => combined_diff(ctx, run.best_change()).await,
    };
    let done = match &verdict {
        Some(v) => run.steps_of(v.round),
        None => run.current().map_or(0, |step| step.code.subtask + 1),
    };
    let explanation = explain(plan, done, verdict.as_ref(), failure.as_deref());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_the_change_did_not_go_through_are_said_apart() {
        let plan: PlanOutput = serde_json::from_value(json!({
            "plan": {"subtasks": [{"description": "fix formatter"}, {"description": "validate engine"}], "verify": "pytest"},
            "context": {"summary": "", "files": []}, "fallback": false, "round_start": 0, "replans": 0
        }))
        .unwrap();
        let text = explain(&plan, 1, None, None);
        assert!(text.contains("Plan:\n- fix formatter\nNot in this change:\n- validate engine\n"), "{text}");
        assert!(!explain(&plan, 2, None, None).contains("Not in this change"));
    }
}
