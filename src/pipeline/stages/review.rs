//! Stage 5: the round's winning patches become one change in a scratch worktree, its
//! tests run, and the reviewer sees the change, the files after it and the test output,
//! and answers with a verdict constrained by a JSON schema: approved, or a list of
//! concrete problems. A round that failed at the vote is rejected without a review.

use crate::pipeline::record::{Verdict, VoteOutput};
use serde::Deserialize;
use serde_json::json;

use crate::models::Role;
use crate::pipeline::context::{change_focus, fit_files, render_files, ContextFile};
use crate::pipeline::evidence::worktree;
use crate::pipeline::evidence::{blocking, excuse, run_tests, selection, TestOutcome, TestPlan};
use crate::pipeline::{tuning, Ctx, Event, PipelineError};
use crate::state::Stage;
use crate::tools::Workspace;

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "problems": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 300}}
        },
        "required": ["approved", "problems"]
    })
}

#[derive(Deserialize)]
struct Answer {
    approved: bool,
    #[serde(default)]
    problems: Vec<String>,
}

/// The verdict on the round that `vote` ended.
pub async fn run(ctx: &Ctx<'_>, task: &str, vote: &VoteOutput) -> Result<Verdict, PipelineError> {
    if let (None, Some(reason)) = (vote.winner, &vote.reason) {
        let verdict = Verdict {
            round: vote.round,
            approved: false,
            problems: vec![reason.clone()],
            diff: String::new(),
            files: Vec::new(),
            tests: None,
        };
        let event =
            Event::Verdict { round: vote.round, approved: false, problems: verdict.problems.clone(), skipped: true };
        ctx.emit(Stage::Review, event).await?;
        return Ok(verdict);
    }
    let (diff, files, tests) = combined(ctx, task, &vote.patches).await?;
    review(ctx, task, vote.round, diff, files, tests).await
}

/// The round's sub-task patches as one diff against the workspace, the changed files as
/// they end up (what the reviewer reads the diff against), and the tests run on them.
async fn combined(
    ctx: &Ctx<'_>,
    task: &str,
    patches: &[String],
) -> Result<(String, Vec<ContextFile>, Option<TestOutcome>), PipelineError> {
    let root = ctx.tools.workspace().root().to_path_buf();
    let (scratch, diff, changed) = {
        let patches = patches.to_vec();
        blocking(move || {
            let scratch = worktree::combine(&root, &patches)?;
            let (diff, changed) = (scratch.diff()?, scratch.changed()?);
            Ok((scratch, diff, changed))
        })
        .await?
    };
    let tree = Workspace::new(scratch.path()).map_err(PipelineError::Tool)?;
    let files = fit_files(ctx, &tree, &changed, ctx.options.context_tokens / 2, &change_focus(task, &diff));
    let tests = match review_tests(ctx, task, &changed).await? {
        Some(plan) => {
            let mut outcome = run_tests(ctx, &scratch, &plan).await?;
            if let Some(outcome) = &mut outcome {
                excuse(&plan, task, &mut [outcome]);
            }
            outcome
        }
        None => None,
    };
    // Removing the worktree runs git too.
    blocking(move || {
        drop(scratch);
        Ok(())
    })
    .await?;
    Ok((diff, files, tests))
}

/// The tests of the changed files, with a baseline on the workspace as it is (so the
/// reviewer is not shown failures the change did not cause).
async fn review_tests(ctx: &Ctx<'_>, task: &str, changed: &[String]) -> Result<Option<TestPlan>, PipelineError> {
    if !ctx.has_tests() {
        return Ok(None);
    }
    let root = ctx.tools.workspace().root().to_path_buf();
    let (changed, task) = (changed.to_vec(), task.to_string());
    let found = blocking(move || {
        let selection = selection::select(&root, &changed, &task, &worktree::workspace_files(&root));
        Ok(selection.map(|s| (s, worktree::workspace_patch(&root))))
    })
    .await?;
    let Some((selection, patch)) = found else { return Ok(None) };
    Ok(TestPlan::prepare(ctx, &[patch?], selection).await?.ok())
}

/// `files` are the changed files after the change: a small reviewer misreads a diff alone
/// (it objected to lines the diff removes).
async fn review(
    ctx: &Ctx<'_>,
    task: &str,
    round: u32,
    diff: String,
    files: Vec<ContextFile>,
    tests: Option<TestOutcome>,
) -> Result<Verdict, PipelineError> {
    let mut user = format!("Task:\n{task}\n\nChange:\n```diff\n{diff}```\n");
    if !files.is_empty() {
        user.push_str(&format!("\nThe changed files after the change:\n{}", render_files(&files)));
    }
    match &tests {
        Some(t) => user.push_str(&format!(
            "\nTests {} (passed {}, failed {}). Output tail:\n```\n{}\n```\n",
            if t.success { "pass" } else { "FAIL" },
            t.passed.map(|n| n.to_string()).unwrap_or("?".into()),
            t.failed.map(|n| n.to_string()).unwrap_or("?".into()),
            t.tail(15)
        )),
        None => user.push_str("\nThe workspace has no tests to run.\n"),
    }
    let answer = ctx.ask_json(Role::Reviewer, &schema(), user, tuning::REVIEW_TOKENS).await?;
    let (approved, problems) = match serde_json::from_str::<Answer>(&answer) {
        // A reviewer that lists problems has not approved, whatever the flag says.
        Ok(a) => (
            a.approved && a.problems.is_empty(),
            if !a.approved && a.problems.is_empty() { vec!["rejected without a reason".into()] } else { a.problems },
        ),
        Err(_) => (false, vec!["the review was not valid JSON (cut off?)".into()]),
    };
    let verdict = Verdict { round, approved, problems, diff, files, tests };
    let event =
        Event::Verdict { round, approved: verdict.approved, problems: verdict.problems.clone(), skipped: false };
    ctx.emit(Stage::Review, event).await?;
    Ok(verdict)
}
