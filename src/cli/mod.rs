//! Command-line arguments (clap) and one file per subcommand.

mod chat;
mod eval;
mod mcp;
mod models;
mod run;
mod serve;
mod spec;
mod tasks;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigFile, Overrides};

#[derive(Debug, Parser)]
#[command(name = "quorum", version = env!("QUORUM_VERSION"), about = "A local multi-agent coding service on llama.cpp")]
pub struct Cli {
    /// TOML config file (profile, role overrides, server settings).
    #[arg(long, global = true, env = "QUORUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// More logging: -v debug, -vv trace (RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load every role's model and serve the OpenAI-compatible API.
    Serve(serve::ServeArgs),
    /// Ask one role something and stream the answer to the terminal.
    Chat(chat::ChatArgs),
    /// Download and inspect the models of a profile.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Measure quorum on function-completion tasks checked by hidden tests.
    Eval(eval::EvalArgs),
    /// Run the multi-agent pipeline on a task and print the reviewed diff.
    Run(run::RunArgs),
    /// Serve the codebase tools over MCP on stdin/stdout (for editors and agents).
    Mcp(mcp::McpArgs),
    /// List and inspect pipeline tasks in the state store.
    Tasks(tasks::TasksArgs),
    /// spec-kit: `quorum spec init`, then `quorum spec COMMAND "arguments"` (specify,
    /// clarify, plan, tasks, implement, analyze, ...).
    Spec(spec::SpecArgs),
}

/// Which models to use; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Built-in profile: small (default) or m4max.
    #[arg(long)]
    pub profile: Option<String>,
    /// Where model files are linked (default: $QUORUM_CACHE/models, or ~/.cache/quorum/models).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Override a role's model: ROLE=PATH or ROLE=hf:OWNER/REPO/FILE.gguf; ROLE may be `all`.
    #[arg(long = "model", value_name = "ROLE=SPEC")]
    pub models: Vec<String>,
    /// Threads per decode (default: all cores; on a CPU decodes of different models take turns).
    #[arg(long)]
    pub threads: Option<u32>,
}

impl ModelArgs {
    pub fn config(
        &self,
        file: Option<&PathBuf>,
        host: Option<IpAddr>,
        port: Option<u16>,
        state: Option<String>,
        workspace: Option<PathBuf>,
    ) -> anyhow::Result<Config> {
        let file = match file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let overrides = Overrides {
            profile: self.profile.clone(),
            models_dir: self.models_dir.clone(),
            host,
            port,
            threads: self.threads,
            state,
            workspace,
            models: self.models.clone(),
        };
        Ok(Config::resolve(file, overrides)?)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.config.as_ref()).await,
        Command::Chat(args) => chat::run(args, cli.config.as_ref()).await,
        Command::Models(cmd) => models::run(cmd, cli.config.as_ref()).await,
        Command::Eval(args) => eval::run(args, cli.config.as_ref()).await,
        Command::Run(args) => run::run(args, cli.config.as_ref()).await,
        Command::Mcp(args) => mcp::run(args, cli.config.as_ref()).await,
        Command::Tasks(args) => tasks::run(args, cli.config.as_ref()).await,
        Command::Spec(args) => spec::run(args, cli.config.as_ref()).await,
    }
}
