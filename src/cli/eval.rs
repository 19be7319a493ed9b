//! `quorum eval --tasks FILE.jsonl --mode single [--limit N] [--out DIR]`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::ModelArgs;
use crate::eval;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// One coder sample per task (the baseline).
    Single,
    /// Candidates from one prefill, red flags, voting; no review.
    Vote,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// JSONL tasks: task_id, prompt, entry_point, test.
    #[arg(long)]
    pub tasks: PathBuf,
    #[arg(long, value_enum, default_value = "single")]
    pub mode: Mode,
    /// Only the first N tasks.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where results.json and summary.md go.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Tokens a coder answer may use.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Seconds each hidden test may run.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: EvalArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let mut tasks = eval::load_tasks(&args.tasks)?;
    if let Some(limit) = args.limit {
        tasks.truncate(limit);
    }
    let config = args.models.config(config, None, None, None, None)?;
    let options = crate::pipeline::PipelineOptions::default().with(&config.pipeline)?;
    let mode = args.mode;
    let engine = tokio::task::spawn_blocking(move || match mode {
        Mode::Single => crate::app::load_role(&config, crate::models::Role::Coder),
        Mode::Vote => crate::app::load_roles(&config, &[crate::models::Role::Coder, crate::models::Role::Voter]),
    })
    .await??;
    let bar = ProgressBar::new(tasks.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]").expect("valid template"));
    let mut results = Vec::new();
    for task in &tasks {
        bar.set_message(task.task_id.clone());
        let result = match args.mode {
            Mode::Single => eval::run_single(&engine, task, args.max_tokens, Duration::from_secs(args.timeout)).await?,
            Mode::Vote => {
                let options = crate::pipeline::PipelineOptions { coder_max_tokens: args.max_tokens, ..options.clone() };
                eval::run_vote(&engine, task, &options, Duration::from_secs(args.timeout)).await?
            }
        };
        results.push(result);
        let passed = results.iter().filter(|r| r.passed).count();
        bar.set_message(format!("{passed} passed"));
        bar.inc(1);
    }
    bar.finish();
    let name = match args.mode {
        Mode::Single => "single",
        Mode::Vote => "vote",
    };
    let summary = eval::summarize(name, &results);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let json = serde_json::json!({"summary": summary, "results": results});
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let table = eval::markdown(&summary);
    std::fs::write(args.out.join("summary.md"), &table)?;
    println!("{table}");
    Ok(())
}
