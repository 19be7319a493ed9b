//! `quorum spec init` and `quorum spec COMMAND "arguments"`: spec-kit's commands on the
//! models of this process, with their progress on stderr and their report on stdout.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::ModelArgs;
use crate::media::Media;
use crate::spec::{Progress, SpecKit};

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// `init`, or a spec-kit command of the workspace: specify, clarify, plan, tasks,
    /// implement, analyze, checklist, constitution, ...
    pub command: String,
    /// What the command's `$ARGUMENTS` get (the feature, for `specify`).
    #[arg(default_value = "")]
    pub arguments: String,
    /// The repository (default: the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Pipeline options for `implement`, as JSON.
    #[arg(long)]
    pub options: Option<String>,
    /// State store (as for `serve`); a server using the same file must be stopped first.
    #[arg(long, env = "QUORUM_STATE")]
    pub state: Option<String>,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: SpecArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    if args.command == "init" {
        let root = args.workspace.clone().unwrap_or_else(|| ".".into());
        println!("{}", crate::spec::init(&root).await?);
        return Ok(());
    }
    let config = args.models.config(config, None, None, args.state.clone(), args.workspace.clone())?;
    let options = match &args.options {
        Some(json) => serde_json::from_str(json).context("--options is not valid JSON")?,
        None => serde_json::Value::Null,
    };
    let pipeline = super::run::build(&config, &Media::default()).await?;
    let tools = pipeline.workspaces().default_tools().clone();
    // Fails before any work when the workspace has no such command.
    crate::tools::speckit::find(tools.workspace().root(), &args.command)?;
    let (progress, mut lines) = Progress::channel();
    let printer = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            eprintln!("{line}");
        }
    });
    let kit = SpecKit::new(pipeline);
    let report = kit.run(&tools, &args.command, &args.arguments, options, &progress).await;
    drop(progress);
    printer.await?;
    let report = report?;
    println!("{}", report.summary());
    anyhow::ensure!(report.done, "/speckit.{} is not done", report.command);
    Ok(())
}
