//! How the pipeline asks models for text: one trait, so that stage logic runs against the
//! real engine in production and a scripted fake in tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::PipelineError;
use crate::engine::{ChatMessage, Engine, FinishReason, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;

/// One request to a role: a chat, `n` samples from one prefill (a temperature each), an
/// optional grammar the output must follow, strings that end it (not kept in the text),
/// and a time by which the samples still running end where they are.
#[derive(Debug, Clone)]
pub struct Ask {
    pub messages: Vec<ChatMessage>,
    pub temperatures: Vec<f32>,
    pub max_tokens: u32,
    pub grammar: Option<String>,
    pub stop: Vec<String>,
    pub deadline: Option<tokio::time::Instant>,
}

impl Ask {
    pub fn new(system: &str, user: String, max_tokens: u32) -> Ask {
        let messages = vec![ChatMessage::new("system", system.trim().to_string()), ChatMessage::new("user", user)];
        Ask { messages, temperatures: vec![0.0], max_tokens, grammar: None, stop: Vec::new(), deadline: None }
    }

    pub fn samples(mut self, temperatures: Vec<f32>) -> Ask {
        self.temperatures = temperatures;
        self
    }

    pub fn grammar(mut self, grammar: String) -> Ask {
        self.grammar = Some(grammar);
        self
    }

    pub fn stop(mut self, stop: &[&str]) -> Ask {
        self.stop = stop.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn until(mut self, deadline: Option<tokio::time::Instant>) -> Ask {
        self.deadline = deadline;
        self
    }
}

/// How a sample ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// By itself: the end of generation, a stop string, the end of its grammar.
    Finished,
    /// At the ask's `max_tokens`.
    TokenLimit,
    /// At the ask's deadline, still going.
    Deadline,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub text: String,
    pub ending: Ending,
    pub tokens: u32,
}

#[async_trait]
pub trait Models: Send + Sync {
    /// One sample per temperature in `ask.temperatures`.
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError>;
    /// Tokens of `text` as the role's model counts them.
    fn count_tokens(&self, role: Role, text: &str) -> usize;
    /// How many samples the role may draw at once (its `parallel`).
    fn parallel(&self, role: Role) -> u32;
    /// The role's context in tokens: a prompt and its answer must fit it.
    fn context_size(&self, _role: Role) -> usize {
        usize::MAX
    }
    /// The parameters of the role's model (0 where unknown).
    fn parameters(&self, _role: Role) -> u64 {
        0
    }
}

/// The real engine.
pub struct EngineModels(pub std::sync::Arc<Engine>);

#[async_trait]
impl Models for EngineModels {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        let handle = self.0.role(role).ok_or_else(|| PipelineError::Model(format!("the {role} role is not loaded")))?;
        let n = ask.temperatures.len() as u32;
        let request = GenerateRequest {
            prompt: Prompt::Chat(ask.messages),
            sampling: SamplingParams {
                max_tokens: Some(ask.max_tokens),
                temperatures: ask.temperatures,
                grammar: ask.grammar,
                stop: ask.stop,
                ..Default::default()
            },
            n,
        };
        let generation = handle.start(request).await.map_err(|e| PipelineError::Model(e.to_string()))?;
        let done = generation.collect_until(ask.deadline).await.map_err(|e| PipelineError::Model(e.to_string()))?;
        Ok(done
            .into_iter()
            .map(|c| match c.finish {
                // Cut at the deadline: the engine counted nothing yet.
                None => Sample { tokens: handle.count_tokens(&c.text) as u32, text: c.text, ending: Ending::Deadline },
                Some(finish) => Sample {
                    text: c.text,
                    ending: if finish == FinishReason::Length { Ending::TokenLimit } else { Ending::Finished },
                    tokens: c.completion_tokens,
                },
            })
            .collect())
    }

    fn count_tokens(&self, role: Role, text: &str) -> usize {
        self.0.role(role).map(|h| h.count_tokens(text)).unwrap_or(text.len() / 3)
    }

    fn parallel(&self, role: Role) -> u32 {
        self.0.role(role).map(|h| h.spec().parallel).unwrap_or(1)
    }

    fn context_size(&self, role: Role) -> usize {
        self.0.role(role).map_or(usize::MAX, |h| h.context_size() as usize)
    }

    fn parameters(&self, role: Role) -> u64 {
        self.0.role(role).map(|h| h.parameters()).unwrap_or(0)
    }
}

/// A fake for tests: answers by what is asked, from scripted texts per role and needle (a
/// text the prompt contains), and records what it was asked. Tokens are counted as
/// whitespace-separated words; an answer holding `<<LIMIT>>` ends at the token limit, one
/// holding `<<DEADLINE>>` at the deadline.
#[derive(Default)]
pub struct ScriptedModels {
    rules: Mutex<Vec<Rule>>,
    pub asked: Mutex<Vec<(Role, Ask)>>,
}

struct Rule {
    role: Role,
    needle: String,
    answers: VecDeque<String>,
}

impl ScriptedModels {
    /// Queues answers for every ask of `role`, in order (see [`ScriptedModels::answer`]).
    pub fn script(&self, role: Role, answers: impl IntoIterator<Item = impl Into<String>>) {
        self.answer(role, "", answers);
    }

    /// Queues answers for the asks of `role` whose messages contain `needle`. Each sample
    /// takes the next answer of the matching rule with the longest needle that has one
    /// left, so a new kind of ask never takes another's answers; an ask no rule answers
    /// fails, as a model error.
    pub fn answer(&self, role: Role, needle: &str, answers: impl IntoIterator<Item = impl Into<String>>) {
        let mut rules = self.rules.lock().expect("script lock");
        let answers = answers.into_iter().map(Into::into);
        match rules.iter_mut().find(|r| r.role == role && r.needle == needle) {
            Some(rule) => rule.answers.extend(answers),
            None => rules.push(Rule { role, needle: needle.to_string(), answers: answers.collect() }),
        }
    }

    fn next(&self, role: Role, ask: &Ask) -> Option<String> {
        let mut rules = self.rules.lock().expect("script lock");
        let matches = |r: &Rule| {
            r.role == role && !r.answers.is_empty() && ask.messages.iter().any(|m| m.content.contains(&r.needle))
        };
        let rule = rules.iter_mut().filter(|r| matches(r)).max_by_key(|r| r.needle.len())?;
        rule.answers.pop_front()
    }
}

#[async_trait]
impl Models for ScriptedModels {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        let texts: Option<Vec<String>> = ask.temperatures.iter().map(|_| self.next(role, &ask)).collect();
        self.asked.lock().expect("asked lock").push((role, ask));
        let texts =
            texts.ok_or_else(|| PipelineError::Model(format!("no scripted answer for this ask of the {role}")))?;
        Ok(texts
            .into_iter()
            .map(|text| Sample {
                tokens: text.split_whitespace().count() as u32,
                ending: match () {
                    _ if text.contains("<<LIMIT>>") => Ending::TokenLimit,
                    _ if text.contains("<<DEADLINE>>") => Ending::Deadline,
                    _ => Ending::Finished,
                },
                text,
            })
            .collect())
    }

    fn count_tokens(&self, _role: Role, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn parallel(&self, _role: Role) -> u32 {
        5
    }
}
