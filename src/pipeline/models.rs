//! How the pipeline asks models for text: one trait, so that stage logic runs against the
//! real engine in production and a scripted fake in tests.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use super::PipelineError;
use crate::engine::{ChatMessage, Engine, FinishReason, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;

/// One request to a role: a chat, `n` samples from one prefill (a temperature each), and
/// an optional grammar the output must follow.
#[derive(Debug, Clone)]
pub struct Ask {
    pub messages: Vec<ChatMessage>,
    pub temperatures: Vec<f32>,
    pub max_tokens: u32,
    pub grammar: Option<String>,
}

impl Ask {
    pub fn new(system: &str, user: String, max_tokens: u32) -> Ask {
        let messages = vec![
            ChatMessage { role: "system".into(), content: system.trim().to_string() },
            ChatMessage { role: "user".into(), content: user },
        ];
        Ask { messages, temperatures: vec![0.0], max_tokens, grammar: None }
    }

    pub fn samples(mut self, temperatures: Vec<f32>) -> Ask {
        self.temperatures = temperatures;
        self
    }

    pub fn grammar(mut self, grammar: String) -> Ask {
        self.grammar = Some(grammar);
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub text: String,
    /// Stopped at `max_tokens` rather than by itself.
    pub hit_limit: bool,
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
                ..Default::default()
            },
            n,
        };
        let generation = handle.start(request).await.map_err(|e| PipelineError::Model(e.to_string()))?;
        let done = generation.collect().await.map_err(|e| PipelineError::Model(e.to_string()))?;
        Ok(done
            .into_iter()
            .map(|c| Sample {
                text: c.text,
                hit_limit: c.finish == Some(FinishReason::Length),
                tokens: c.completion_tokens,
            })
            .collect())
    }

    fn count_tokens(&self, role: Role, text: &str) -> usize {
        self.0.role(role).map(|h| h.count_tokens(text)).unwrap_or(text.len() / 3)
    }

    fn parallel(&self, role: Role) -> u32 {
        self.0.role(role).map(|h| h.spec().parallel).unwrap_or(1)
    }
}

/// A fake for tests: answers each role from a queue of scripted texts, and records what
/// it was asked. Tokens are counted as whitespace-separated words.
#[derive(Default)]
pub struct ScriptedModels {
    answers: Mutex<Vec<(Role, VecDeque<String>)>>,
    pub asked: Mutex<Vec<(Role, Ask)>>,
}

impl ScriptedModels {
    /// Queues answers for a role; each sample takes the next one.
    pub fn script(&self, role: Role, answers: impl IntoIterator<Item = impl Into<String>>) {
        let mut all = self.answers.lock().expect("script lock");
        let queue: VecDeque<String> = answers.into_iter().map(Into::into).collect();
        match all.iter_mut().find(|(r, _)| *r == role) {
            Some((_, q)) => q.extend(queue),
            None => all.push((role, queue)),
        }
    }
}

#[async_trait]
impl Models for ScriptedModels {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        let n = ask.temperatures.len();
        self.asked.lock().expect("asked lock").push((role, ask));
        let mut all = self.answers.lock().expect("script lock");
        let no_answer = || PipelineError::Model(format!("no scripted answer left for {role}"));
        let (_, queue) = all.iter_mut().find(|(r, _)| *r == role).ok_or_else(no_answer)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let text = queue.pop_front().ok_or_else(no_answer)?;
            out.push(Sample {
                tokens: text.split_whitespace().count() as u32,
                hit_limit: text.contains("<<LIMIT>>"),
                text,
            });
        }
        Ok(out)
    }

    fn count_tokens(&self, _role: Role, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn parallel(&self, _role: Role) -> u32 {
        5
    }
}
