//! What callers ask of a role and what comes back: the engine's public request types.

use tokio::sync::mpsc;

/// One chat message (text only; the API rejects other content before it gets here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub enum Prompt {
    /// Formatted with the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Used as is (completions).
    Text(String),
}

/// Sampling options; `None` takes the role's default.
#[derive(Debug, Clone, Default)]
pub struct SamplingParams {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub seed: Option<u32>,
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens (benchmarks want exact token counts).
    pub ignore_eos: bool,
    /// GBNF grammar the output must follow (root rule `root`).
    pub grammar: Option<String>,
    /// One temperature per sample of an `n`-sample request (the pipeline spreads its
    /// candidates over a range); empty: `temperature` for all.
    pub temperatures: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub prompt: Prompt,
    pub sampling: SamplingParams,
    /// Samples from one prompt: it is prefilled once, and each sample decodes on its own
    /// only from the first token it draws differently from the others.
    pub n: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Streamed output of a generation, per choice.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Text {
        choice: u32,
        text: String,
    },
    Done {
        choice: u32,
        finish: FinishReason,
        completion_tokens: u32,
    },
    /// The whole generation failed; no more events follow. `recovering`: the model's
    /// worker failed and is being restarted, so the same request can be retried.
    Failed {
        message: String,
        recovering: bool,
    },
}

/// A running generation. Dropping it cancels the work: the worker frees its sequences
/// at the next step.
#[derive(Debug)]
pub struct Generation {
    pub prompt_tokens: u32,
    pub n: u32,
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// A finished choice, for callers that do not stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub finish: Option<FinishReason>,
    pub completion_tokens: u32,
}

impl Generation {
    /// Waits for every choice to finish.
    pub async fn collect(mut self) -> Result<Vec<Completion>, super::EngineError> {
        let mut out = vec![Completion::default(); self.n as usize];
        let mut open = self.n;
        while open > 0 {
            match self.events.recv().await {
                Some(Event::Text { choice, text }) => out[choice as usize].text.push_str(&text),
                Some(Event::Done { choice, finish, completion_tokens }) => {
                    let c = &mut out[choice as usize];
                    c.finish = Some(finish);
                    c.completion_tokens = completion_tokens;
                    open -= 1;
                }
                Some(Event::Failed { message, recovering: true }) => {
                    return Err(super::EngineError::Recovering(message))
                }
                Some(Event::Failed { message, .. }) => return Err(super::EngineError::Decode(message)),
                None => return Err(super::EngineError::WorkerGone),
            }
        }
        Ok(out)
    }
}
