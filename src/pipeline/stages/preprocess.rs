//! Stage 1: the request becomes plain task text. Text passes through (trimmed, checked);
//! images and audio are refused by the API with a "not supported yet" error until the
//! multimodal issue lands.

use crate::pipeline::{Ctx, Event, PipelineError};
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
    ctx.emit(Stage::Preprocess, Event::TaskText { chars: text.chars().count() }).await?;
    Ok(text.to_string())
}
