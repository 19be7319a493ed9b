//! Stage 1: the request becomes plain task text. Text passes through (trimmed, checked);
//! images and audio are refused by the API with a "not supported yet" error until the
//! multimodal issue lands.

use super::{Ctx, Event, PipelineError};
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

/// Requests chat front-ends send on their own (a title for the chat, tags, follow-up
/// suggestions, search queries): they get one model's answer, never the pipeline.
pub fn is_auxiliary_request(text: &str) -> bool {
    let t = text.to_lowercase();
    let open_webui = t.trim_start().starts_with("### task:");
    let title = t.contains("title")
        && (t.contains("3-5 word") || t.contains("3-4 word") || t.contains("short title") || t.contains("concise"));
    let tags = t.contains("tags") && (t.contains("categoriz") || t.contains("broad tags"));
    let follow_ups = t.contains("follow-up questions") || t.contains("follow up questions");
    open_webui || title || tags || follow_ups
}

#[cfg(test)]
mod tests {
    use super::is_auxiliary_request;

    #[test]
    fn front_end_housekeeping_is_recognized() {
        assert!(is_auxiliary_request(
            "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history."
        ));
        assert!(is_auxiliary_request(
            "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history"
        ));
        assert!(is_auxiliary_request("Suggest 3-5 relevant follow-up questions the user might ask"));
        assert!(is_auxiliary_request("Given the following conversation, reply with a short title for it."));
        assert!(!is_auxiliary_request("Fix the off-by-one error in paginate() in src/pages.py"));
        assert!(!is_auxiliary_request("Add a --title flag to the CLI"));
    }
}
