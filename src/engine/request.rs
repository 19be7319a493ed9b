//! What callers ask of a role and what comes back: the engine's public request types.

use tokio::sync::mpsc;

/// One chat message. `tool_calls` on an assistant turn that called tools; `tool_call_id`
/// (and the function's `name`) on a `tool` turn carrying a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: role.into(), content: content.into(), ..ChatMessage::default() }
    }
}

/// A function call the model made: `arguments` is JSON text, as OpenAI carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A function the model may call; `parameters` is its JSON schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    pub parameters: serde_json::Value,
}

/// Whether and which tools the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// No tool: the tools are left out of the prompt.
    None,
    #[default]
    Auto,
    /// At least one call, from the first token.
    Required,
    /// A call of this function, from the first token.
    Named(String),
}

/// The tools of a chat request and how they may be called.
#[derive(Debug, Clone, Default)]
pub struct ToolRequest {
    pub tools: Vec<ToolSpec>,
    pub choice: ToolChoice,
    /// More than one call in one answer.
    pub parallel: bool,
    /// Constrain calls to the functions' schemas (off only to measure what it does).
    pub grammar: bool,
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
    /// With `grammar`: the grammar waits for a match of one of these regexes in the output
    /// (llama.cpp's trigger patterns) and constrains from it, or from the pattern's first
    /// group; empty: it constrains from the first token.
    pub grammar_triggers: Vec<String>,
    /// One temperature per sample of an `n`-sample request (the pipeline spreads its
    /// candidates over a range); empty: `temperature` for all.
    pub temperatures: Vec<f32>,
    pub top_k: Option<u32>,
    /// OpenAI's penalties (-2..2) on tokens already generated, and llama.cpp's repeat penalty.
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    pub repeat_penalty: f32,
    /// Added to a token's logit before sampling (-100 bans it).
    pub logit_bias: Vec<(i32, f32)>,
    /// Write control tokens as text: tool-call markers of some families are control tokens.
    pub specials: bool,
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
    /// End-of-generation token.
    Stop,
    /// The stop string at this index of the request's list.
    StopString(usize),
    /// `max_tokens` or the context was reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop | FinishReason::StopString(_) => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Speculative decoding of one choice: tokens drafted, and of those, drawn by the sampler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Speculation {
    pub drafted: u32,
    pub accepted: u32,
}

impl std::ops::Add for Speculation {
    type Output = Speculation;

    fn add(self, other: Speculation) -> Speculation {
        Speculation { drafted: self.drafted + other.drafted, accepted: self.accepted + other.accepted }
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
        speculation: Speculation,
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
    pub speculation: Speculation,
}

impl Generation {
    /// Waits for every choice to finish.
    pub async fn collect(self) -> Result<Vec<Completion>, super::EngineError> {
        self.collect_until(None).await
    }

    /// Waits for every choice to finish, or until `deadline`: then the choices still
    /// running end with the text they have so far and no finish reason, and the
    /// generation is dropped, which frees their sequences.
    pub async fn collect_until(
        mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Vec<Completion>, super::EngineError> {
        let mut out = vec![Completion::default(); self.n as usize];
        let mut open = self.n;
        while open > 0 {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, self.events.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(out),
                },
                None => self.events.recv().await,
            };
            match next {
                Some(Event::Text { choice, text }) => out[choice as usize].text.push_str(&text),
                Some(Event::Done { choice, finish, completion_tokens, speculation }) => {
                    let c = &mut out[choice as usize];
                    c.finish = Some(finish);
                    c.completion_tokens = completion_tokens;
                    c.speculation = speculation;
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
