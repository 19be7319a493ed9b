//! `quorum run "task"`: the pipeline in this process, with a live view of its stages,
//! then the diff. Also `quorum tasks resume ID`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::ModelArgs;
use crate::config::Config;
use crate::media::Media;
use crate::pipeline::{EngineModels, Event, Pipeline, Setup};
use crate::state::Stage;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do, in words (may be left out when --audio or --image says it).
    #[arg(default_value = "")]
    pub task: String,
    /// A spoken task (WAV, MP3, FLAC or OGG), transcribed by the profile's Whisper.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// A screenshot whose text (read by OCR) joins the task; may be repeated.
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// The repository to work on (default: the current directory).
    #[arg(long)]
    pub workspace: Option<PathBuf>,
    /// Apply the reviewed diff to the workspace (default: only print it).
    #[arg(long)]
    pub apply: bool,
    /// Pipeline options as JSON, e.g. '{"candidates": 3, "max_rounds": 1}'.
    #[arg(long)]
    pub options: Option<String>,
    /// State store (as for `serve`); a server using the same file must be stopped first.
    #[arg(long, env = "QUORUM_STATE")]
    pub state: Option<String>,
    #[command(flatten)]
    pub models: ModelArgs,
}

pub async fn run(args: RunArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let config = args.models.config(config, None, None, args.state.clone(), args.workspace.clone())?;
    let options = match &args.options {
        Some(json) => serde_json::from_str(json).context("--options is not valid JSON")?,
        None => serde_json::Value::Null,
    };
    let media = Media::default();
    let pipeline = build(&config, &media).await?;
    let text = task_text(&args, &config, &media).await?;
    let task = pipeline.create(&text, args.apply, options).await?;
    drive(&pipeline, task.id).await
}

/// The task's words, then what its audio and images say.
async fn task_text(args: &RunArgs, config: &Config, media: &Media) -> anyhow::Result<String> {
    let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let audio = args.audio.as_ref().map(read).transpose()?;
    let images = args.images.iter().map(read).collect::<anyhow::Result<Vec<_>>>()?;
    if audio.is_some() {
        let (loader, dir) = (media.clone(), config.speech_model.clone());
        tokio::task::spawn_blocking(move || loader.load_speech(dir.as_deref())).await?;
    }
    let text = media.task_text(&args.task, audio, &images).await?;
    anyhow::ensure!(!text.is_empty(), "say what to do: a task, --audio FILE or --image FILE");
    // What was heard and read, for the user to check.
    if args.audio.is_some() || !args.images.is_empty() {
        eprintln!("task: {text}");
    }
    Ok(text)
}

/// `quorum tasks resume ID`.
pub async fn resume(id: String, config: &Config) -> anyhow::Result<()> {
    let pipeline = build(config, &Media::default()).await?;
    drive(&pipeline, id).await
}

/// The pipeline, its models loaded; `media` gets the vision model where there is one.
pub(super) async fn build(config: &Config, media: &Media) -> anyhow::Result<Pipeline> {
    let workspaces = crate::app::workspaces(config)?;
    let tasks = crate::app::open_tasks(config).await?;
    let bar = ProgressBar::new_spinner().with_message("loading models…");
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let setup = Setup::from_config(config, &serde_json::Value::Null)?;
    let files = crate::app::files_for(config, &crate::app::serving_roles(config, &setup.options))?;
    let cfg = config.clone();
    let engine = tokio::task::spawn_blocking(move || crate::app::load(&files, &cfg, &|_| {})).await??;
    bar.finish_and_clear();
    crate::app::connect_vision(&engine, media);
    Ok(setup.pipeline(Arc::new(EngineModels(Arc::new(engine))), workspaces, tasks))
}

/// Runs (or resumes) the task while printing its events, then its result.
async fn drive(pipeline: &Pipeline, id: String) -> anyhow::Result<()> {
    let tasks = pipeline.tasks();
    let from = tasks.events(&id, 0).await?.len() as u64;
    let mut events = Box::pin(pipeline.follow(&id, from));
    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    // Without a terminal the bar is hidden, and so would be its lines: log them plainly.
    let say = |line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    say(format!("task {id}"));
    let run = pipeline.run(&id);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(event) = events.next() => {
                if let Some(line) = event.describe() {
                    if event.event == Event::StageStarted {
                        bar.set_message(line.trim().to_string());
                    }
                    say(line);
                }
            }
        }
    };
    bar.finish_and_clear();
    let task = match result {
        Ok(task) => task,
        Err(e) => anyhow::bail!("task {id} failed: {e} (quorum tasks show {id} has the details)"),
    };
    let Some(output) = task.outputs.get(&Stage::Output) else {
        // A plan-only task ends after its plan, which its events above showed.
        if let Some(error) = &task.error {
            anyhow::bail!("task {id} ended after its plan: {error}");
        }
        println!("\nplan only: nothing was coded");
        return Ok(());
    };
    println!("\n{}", output["explanation"].as_str().unwrap_or_default().trim());
    let diff = output["diff"].as_str().unwrap_or_default();
    if !diff.is_empty() {
        println!("\n{diff}");
    }
    if output["applied"] == true {
        println!("Applied to the workspace.");
    }
    if let Some(error) = &task.error {
        anyhow::bail!("task {id} ended without an approved change: {error}");
    }
    Ok(())
}
