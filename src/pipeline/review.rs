//! Stage 5: the reviewer sees the combined change and its test output and answers with a
//! verdict constrained by a JSON schema: approved, or a list of concrete problems.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::code::TestOutcome;
use super::plan::{render_files, ContextFile};
use super::{Ctx, Event, PipelineError};
use crate::models::Role;
use crate::state::Stage;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub round: u32,
    pub approved: bool,
    pub problems: Vec<String>,
    pub diff: String,
    /// The changed files after the change, as the reviewer read them; a retry writing
    /// whole files starts from them.
    #[serde(default)]
    pub files: Vec<ContextFile>,
    pub tests: Option<TestOutcome>,
}

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

/// `files` are the changed files after the change: a small reviewer misreads a diff alone
/// (it objected to lines the diff removes).
pub async fn run(
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
    let answer = ctx.ask_json(Role::Reviewer, &schema(), user, 300).await?;
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
