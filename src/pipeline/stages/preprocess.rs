//! Stage 1: the request becomes task text. The text is checked (not empty, not too long);
//! with `rewrite_task`, the preprocessor model rewrites a raw request (a transcript, text
//! read from a screenshot, a rambling message) into one clear statement, which is used only
//! when it keeps every concrete detail of the original. Audio and images became text
//! before the pipeline (transcripts, OCR), at the edge that received them.

use crate::models::Role;
use crate::pipeline::models::{Ask, Ending};
use crate::pipeline::{heuristics, tuning, Ctx, Event, PipelineError};
use crate::state::{Stage, TaskInput};

/// Longer requests are refused rather than silently cut.
const MAX_TASK_CHARS: usize = 32_000;

pub async fn run(ctx: &Ctx<'_>, input: &TaskInput) -> Result<String, PipelineError> {
    let text = input.text.trim();
    if text.is_empty() {
        return Err(PipelineError::Invalid("the task is empty".into()));
    }
    if text.chars().count() > MAX_TASK_CHARS {
        return Err(PipelineError::Invalid(format!("the task is longer than {MAX_TASK_CHARS} characters")));
    }
    let task = if ctx.options.rewrite_task { rewrite(ctx, text).await? } else { text.to_string() };
    ctx.emit(Stage::Preprocess, Event::TaskText { chars: task.chars().count() }).await?;
    Ok(task)
}

/// The preprocessor's statement of the task, or the original where the rewrite lost a
/// name, path, quoted message or number (each case an event).
async fn rewrite(ctx: &Ctx<'_>, text: &str) -> Result<String, PipelineError> {
    let ask = Ask::new(ctx.prompts.get(Role::Preprocessor), text.to_string(), tuning::PREPROCESS_TOKENS);
    let answer = match ctx.models.ask(Role::Preprocessor, ask).await {
        Ok(samples) => samples.into_iter().next(),
        // Not loaded (a server that had no use for it) or failed: the request stays as written.
        Err(PipelineError::Model(why)) => {
            tracing::warn!(%why, "no rewrite of the request");
            None
        }
        Err(e) => return Err(e),
    };
    let rewritten = answer.as_ref().filter(|a| a.ending == Ending::Finished).map(|a| a.text.trim()).unwrap_or_default();
    let missing: Vec<String> =
        heuristics::concrete_details(text).into_iter().filter(|d| !rewritten.contains(d.as_str())).collect();
    if rewritten.is_empty() || !missing.is_empty() {
        ctx.emit(Stage::Preprocess, Event::RewriteKept { missing }).await?;
        return Ok(text.to_string());
    }
    Ok(rewritten.to_string())
}
