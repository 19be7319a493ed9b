//! Probes, after the plan and logged under its stage: the calls the task writes itself,
//! then calls of the code under change with edge-case inputs that the reviewer model
//! writes (not under a time budget), never their results; every candidate runs them later
//! ([`crate::pipeline::evidence::probes`]).

use serde_json::json;

use crate::models::Role;
use crate::pipeline::context::Context;
use crate::pipeline::evidence::probes::{module, Probes};
use crate::pipeline::record::Plan;
use crate::pipeline::{heuristics, tuning, Ctx, Event, PipelineError};
use crate::state::Stage;
use crate::tools::TestCommand;

/// Probes for the plan's code files, or none: asked for (`probes` > 0), tests under
/// pytest, Python files to change.
pub async fn run(ctx: &Ctx<'_>, task: &str, plan: &Plan, context: &Context) -> Result<Probes, PipelineError> {
    let root = ctx.tools.workspace().root();
    let pytest = crate::tools::test_commands(root).contains(&TestCommand::Pytest);
    if ctx.options.probes == 0 || !ctx.has_tests() || !pytest {
        return Ok(Probes::default());
    }
    if ctx.budget.spent(tuning::BUDGET_NO_MORE) {
        ctx.emit(Stage::Plan, ctx.budget.cut("no probes")).await?;
        return Ok(Probes::default());
    }
    let paths: Vec<&String> = plan
        .subtasks
        .iter()
        .flat_map(|s| &s.files)
        .filter(|p| module(p).is_some() && !crate::tools::is_test_file(p))
        .collect();
    let shown: Vec<_> = context.files.iter().filter(|f| paths.contains(&&f.path)).cloned().collect();
    if shown.is_empty() {
        return Ok(Probes::default());
    }
    let modules: Vec<String> = shown.iter().filter_map(|f| module(&f.path)).collect();
    let n = ctx.options.probes;
    // The task's own examples first: the model is asked for the cases they do not show.
    let mut all = heuristics::example_calls(task);
    all.retain(|c| c.len() <= 120);
    // Under a time budget the task's own examples are the probes, or there are none: they
    // tell candidates apart best, and the model's calls cost a reviewer's answer before
    // any candidate is written.
    if ctx.budget.left().is_some() {
        if all.is_empty() {
            ctx.emit(Stage::Plan, ctx.budget.cut("no probes: the task writes no calls")).await?;
            return Ok(Probes::default());
        }
        all.truncate(n as usize);
        ctx.emit(Stage::Plan, ctx.budget.cut("the task's own example calls are the probes")).await?;
        return emitted(ctx, Probes { modules, calls: all }, None).await;
    }
    let user = format!(
        "Task:\n{task}\n\nCode:\n{}\nWrite {n} calls of the functions this task is about, each a Python expression with literal \
         arguments such as `name(...)`, that probe the cases the text describes in words but its examples do not show: empty \
         input, a single element, zero or negative numbers, boundaries, repeated or unusual characters, inputs it says are invalid.",
        crate::pipeline::context::render_files(&shown)
    );
    let schema = json!({
        "type": "object",
        "properties": {"calls": {"type": "array", "minItems": 1, "maxItems": n, "items": {"type": "string", "maxLength": 120}}},
        "required": ["calls"]
    });
    let answer = ctx
        .ask_json_as(
            crate::prompts::PROBES,
            Role::Reviewer,
            &schema,
            user,
            tuning::PROBE_TOKENS_PER_CALL * n + tuning::PROBE_TOKENS_BASE,
        )
        .await;
    // Probes only sharpen the vote: without them (a model error, an answer cut off) the
    // task goes on as before.
    let (calls, error) = match answer {
        Ok(answer) => {
            (serde_json::from_str::<serde_json::Value>(&answer).map(|v| calls(&v["calls"])).unwrap_or_default(), None)
        }
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    all.extend(calls.into_iter().filter(|c| !all.contains(c)).collect::<Vec<_>>());
    all.truncate(n as usize);
    emitted(ctx, Probes { modules, calls: all }, error).await
}

/// `probes`, once their event is logged.
async fn emitted(ctx: &Ctx<'_>, probes: Probes, error: Option<String>) -> Result<Probes, PipelineError> {
    ctx.emit(Stage::Plan, Event::Probes { modules: probes.modules.clone(), calls: probes.calls.clone(), error })
        .await?;
    Ok(probes)
}

/// The usable calls: one line each, a call at all, no repeats.
fn calls(answer: &serde_json::Value) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    for call in answer.as_array().into_iter().flatten().filter_map(|c| c.as_str()).map(str::trim) {
        if !call.is_empty() && !call.contains('\n') && call.contains('(') && !calls.iter().any(|c| c == call) {
            calls.push(call.to_string());
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_line_calls_count_once() {
        let answer = json!(["f('')", " f('') ", "f(\n1)", "", "42", "g(1, [2])"]);
        assert_eq!(calls(&answer), ["f('')", "g(1, [2])"]);
        assert!(calls(&json!("f()")).is_empty());
    }
}
