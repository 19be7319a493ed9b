//! `quorum serve`

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;

use super::ModelArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (default 127.0.0.1; use 0.0.0.0 only on a trusted network).
    #[arg(long)]
    pub host: Option<IpAddr>,
    /// Port (default 8080; 0 picks a free one and prints it).
    #[arg(long)]
    pub port: Option<u16>,
    /// State store: a redb file (default ~/.local/share/quorum/state.redb) or redis://HOST:PORT/DB.
    #[arg(long, env = "QUORUM_STATE")]
    pub state: Option<String>,
    /// The code the tools (REST and MCP at /mcp) work on (default: the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// A root under which requests may name other workspaces (repeatable, or
    /// comma-separated; added to the config's `workspaces`).
    #[arg(long = "workspaces", value_delimiter = ',', value_name = "DIR")]
    pub workspace_roots: Vec<PathBuf>,
    /// An API key clients must send (`Authorization: Bearer KEY` or `x-api-key`); repeat
    /// for several, or give them comma-separated in QUORUM_API_KEY.
    #[arg(long = "api-key", env = "QUORUM_API_KEY", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// A file of API keys, one a line.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// A browser origin allowed besides loopback ones (repeatable), e.g. http://192.168.1.5:3000.
    #[arg(long = "allow-origin")]
    pub allowed_origins: Vec<String>,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: ServeArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let mut config = args.models.config(config, args.host, args.port, args.state, args.workspace)?;
    config.access.add(&args.api_keys, args.api_key_file.as_deref(), &args.allowed_origins)?;
    config.workspaces.extend(args.workspace_roots);
    crate::app::serve(config).await
}
