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
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: ServeArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = args.models.config(config, args.host, args.port, args.state, args.workspace)?;
    crate::app::serve(config).await
}
