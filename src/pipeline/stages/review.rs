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

/// The verdict on the round that `vote` ended; a change that one of the `rejected`
/// verdicts judged keeps that verdict, unreviewed.
pub async fn run(
    ctx: &Ctx<'_>,
    task: &str,
    vote: &VoteOutput,
    rejected: &[&Verdict],
) -> Result<Verdict, PipelineError> {
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
    if let Some(earlier) = rejected.iter().find(|v| v.diff == diff) {
        let mut problems = vec![format!("the change rejected in round {} again", earlier.round)];
        problems.extend(earlier.problems.iter().filter(|p| !p.starts_with("the change rejected in")).cloned());
        let event = Event::Verdict { round: vote.round, approved: false, problems: problems.clone(), skipped: true };
        ctx.emit(Stage::Review, event).await?;
        return Ok(Verdict { round: vote.round, approved: false, problems, diff, files, tests });
    }
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
            let mut outcome = run_tests(ctx, &scratch, scratch.id(), &plan).await?;
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

/// What the reviewer is shown, fitted to its context: the change, the changed files after
/// it and the tests' outcome; where that is too long, without the files, then with the
/// diff's first lines only (a rename's diff can outgrow the reviewer's context).
fn fitted_prompt(ctx: &Ctx<'_>, task: &str, diff: &str, files: &[ContextFile], tests: Option<&TestOutcome>) -> String {
    let room = ctx.models.context_size(Role::Reviewer).saturating_sub(tuning::REVIEW_TOKENS as usize + PROMPT_MARGIN);
    let count = |user: &str| {
        ctx.models.count_tokens(Role::Reviewer, ctx.prompt(Role::Reviewer))
            + ctx.models.count_tokens(Role::Reviewer, user)
    };
    let whole = prompt(task, diff, files, tests);
    if count(&whole) <= room {
        return whole;
    }
    let lean = prompt(task, diff, &[], tests);
    if count(&lean) <= room {
        return lean;
    }
    let left = room.saturating_sub(count(&prompt(task, "", &[], tests)));
    let shown = first_lines(diff, left, |line| ctx.models.count_tokens(Role::Reviewer, line));
    prompt(task, &shown, &[], tests)
}

/// The first lines of `diff` that cost at most `room` tokens (a line costs `count` of it
/// and its newline), and a line saying how many were left out.
fn first_lines(diff: &str, room: usize, count: impl Fn(&str) -> usize) -> String {
    let lines: Vec<&str> = diff.lines().collect();
    let mut shown = String::new();
    let mut used = CUT_LINE_TOKENS;
    for (i, line) in lines.iter().enumerate() {
        used += count(line) + 1;
        if used > room {
            shown.push_str(&format!("... ({} more lines of the diff not shown)\n", lines.len() - i));
            break;
        }
        shown.push_str(line);
        shown.push('\n');
    }
    shown
}

/// Tokens kept free beside the prompt's count for the chat template's own.
const PROMPT_MARGIN: usize = 64;
/// What the line saying how much of a diff was cut costs.
const CUT_LINE_TOKENS: usize = 16;

fn prompt(task: &str, diff: &str, files: &[ContextFile], tests: Option<&TestOutcome>) -> String {
    let mut user = format!("Task:\n{task}\n\nChange:\n```diff\n{diff}```\n");
    if !files.is_empty() {
        user.push_str(&format!("\nThe changed files after the change:\n{}", render_files(files)));
    }
    match tests {
        Some(t) => user.push_str(&format!(
            "\nTests {} (passed {}, failed {}). Output tail:\n```\n{}\n```\n",
            if t.success { "pass" } else { "FAIL" },
            t.passed.map(|n| n.to_string()).unwrap_or("?".into()),
            t.failed.map(|n| n.to_string()).unwrap_or("?".into()),
            t.tail(15)
        )),
        None => user.push_str("\nThe workspace has no tests to run.\n"),
    }
    user
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
    let user = fitted_prompt(ctx, task, &diff, &files, tests.as_ref());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_too_long_for_the_reviewer_is_cut_at_a_line_and_says_so() {
        let diff: String = (0..100).map(|i| format!("+line {i}\n")).collect();
        let words = |s: &str| s.split_whitespace().count();
        assert_eq!(first_lines(&diff, 1000, words), diff, "it fits whole");
        let cut = first_lines(&diff, CUT_LINE_TOKENS + 30, words);
        assert!(
            cut.starts_with("+line 0\n") && cut.ends_with("+line 9\n... (90 more lines of the diff not shown)\n"),
            "{cut}"
        );
    }
}
