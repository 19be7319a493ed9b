//! `quorum mcp`: the codebase tools as an MCP server on stdin/stdout. Nothing but the
//! protocol goes to stdout; logs go to stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::ConfigFile;
use crate::tools::{mcp, Tools, Workspace};

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The code the tools work on (default: the config file's `workspace`, else the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
}

pub async fn run(args: McpArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let file = match config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let root = args.workspace.or(file.workspace).unwrap_or_else(|| ".".into());
    let workspace = Workspace::new(&root).with_context(|| format!("cannot use {} as the workspace", root.display()))?;
    tracing::info!(workspace = %workspace.root().display(), "serving MCP on stdio");
    mcp::serve_stdio(Tools::new(workspace)).await.context("the MCP session failed")
}
