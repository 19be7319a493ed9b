//! `quorum mcp`: the codebase tools as an MCP server on stdin/stdout. Nothing but the
//! protocol goes to stdout; logs go to stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::ConfigFile;
use crate::tools::{mcp, Tools, Workspace, Workspaces};

#[derive(Debug, Args)]
pub struct McpArgs {
    /// The code the tools work on (default: the config file's `workspace`, else the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// A root whose directories a client may declare as its MCP roots (repeatable, or
    /// comma-separated; added to the config's `workspaces`).
    #[arg(long = "workspaces", value_delimiter = ',', value_name = "DIR")]
    pub workspace_roots: Vec<PathBuf>,
}

pub async fn run(args: McpArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let file = match config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let root = args.workspace.or(file.workspace).unwrap_or_else(|| ".".into());
    let workspace = Workspace::new(&root).with_context(|| format!("cannot use {} as the workspace", root.display()))?;
    let mut roots = file.workspaces;
    roots.extend(args.workspace_roots);
    let workspaces = Workspaces::new(Tools::new(workspace), &roots).context("cannot use the `workspaces` roots")?;
    let default = workspaces.default_tools().workspace().root().display().to_string();
    tracing::info!(workspace = %default, roots = ?workspaces.roots(), "serving MCP on stdio");
    mcp::serve_stdio(workspaces).await.context("the MCP session failed")
}
