//! `quorum chat --role ROLE "prompt"`: one answer, streamed to the terminal.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::ModelArgs;
use crate::engine::{ChatMessage, Event, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Which role answers.
    #[arg(long, default_value = "coder")]
    pub role: Role,
    /// System prompt (default: the role's prompt from prompts/).
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long)]
    pub max_tokens: Option<u32>,
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub seed: Option<u32>,
    /// The message.
    pub prompt: String,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: ChatArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = args.models.config(config, None, None, None, None)?;
    let role = args.role;
    let engine = tokio::task::spawn_blocking(move || crate::app::load_role(&config, role)).await??;
    let handle = engine.role(role).context("the role was not loaded")?;
    let system = args.system.unwrap_or_else(|| crate::prompts::system_prompt(role).trim().to_string());
    let messages = vec![ChatMessage::new("system", system), ChatMessage::new("user", args.prompt)];
    let mut generation = handle
        .start(GenerateRequest {
            prompt: Prompt::Chat(messages),
            sampling: SamplingParams {
                temperature: args.temperature,
                max_tokens: args.max_tokens,
                seed: args.seed,
                ..Default::default()
            },
            n: 1,
        })
        .await?;
    let mut out = std::io::stdout().lock();
    while let Some(event) = generation.events.recv().await {
        match event {
            Event::Text { text, .. } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Event::Done { .. } => break,
            Event::Failed { message, .. } => anyhow::bail!("generation failed: {message}"),
        }
    }
    writeln!(out)?;
    Ok(())
}
