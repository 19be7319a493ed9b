//! `quorum tasks list|show ID`: reads the state store directly. The redb file is opened
//! read-only, so this works while a server is writing it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::config::ConfigFile;
use crate::state::{self, EmbeddedStore, StateLocation, StateStore, TaskStatus, TaskStore};

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// State store: a redb file (default ~/.local/share/quorum/state.redb) or redis://HOST:PORT/DB.
    #[arg(long, env = "QUORUM_STATE", global = true)]
    pub state: Option<String>,
    #[command(subcommand)]
    pub command: TasksCommand,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Tasks, newest first.
    List {
        /// Only tasks with this status: queued, running (any stage), a stage name,
        /// succeeded, failed or interrupted.
        #[arg(long)]
        status: Option<TaskStatus>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON (as GET /api/tasks does).
        #[arg(long)]
        json: bool,
    },
    /// Resume an interrupted task after its last completed stage (loads the models).
    Resume {
        id: String,
        /// The repository it works on (default: the current directory).
        #[arg(long)]
        workspace: Option<PathBuf>,
        #[command(flatten)]
        models: super::ModelArgs,
    },
    /// Stop a task: through the server that runs it (a redb file a server holds), or in
    /// the store directly (Redis; a file no server holds).
    Cancel {
        id: String,
        /// The server to ask when it holds the state file.
        #[arg(long, env = "QUORUM_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// One task: its record and event log.
    Show {
        id: String,
        /// Print JSON (as GET /api/task/ID does).
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: TasksArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let file = match config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    if let TasksCommand::Resume { id, workspace, models } = args.command {
        let config = models.config(config, None, None, args.state, workspace)?;
        return super::run::resume(id, &config).await;
    }
    let location = file.state_location(args.state.as_deref())?;
    if let TasksCommand::Cancel { id, server } = &args.command {
        return cancel(&location, id, server).await;
    }
    let Some(tasks) = open(&location).await? else {
        match args.command {
            TasksCommand::List { json: true, .. } => println!("{}", serde_json::json!({"tasks": []})),
            TasksCommand::List { .. } => println!("No tasks yet ({location} does not exist)."),
            TasksCommand::Show { id, .. } => bail!("no task `{id}`: the state file {location} does not exist"),
            TasksCommand::Resume { .. } | TasksCommand::Cancel { .. } => unreachable!("handled above"),
        }
        return Ok(());
    };
    match args.command {
        TasksCommand::List { status, limit, json } => {
            let list = tasks.list(status, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "tasks": list }))?);
            } else if list.is_empty() {
                println!("No tasks{}.", status.map(|s| format!(" with status {s}")).unwrap_or_default());
            } else {
                println!("{:<36}  {:<11}  {:>9}  TITLE", "ID", "STATUS", "UPDATED");
                for t in list {
                    println!("{:<36}  {:<11}  {:>9}  {}", t.id, t.status.to_string(), ago(t.updated_at), t.title);
                }
            }
        }
        TasksCommand::Resume { .. } | TasksCommand::Cancel { .. } => unreachable!("handled above"),
        TasksCommand::Show { id, json } => {
            let task = tasks
                .get(&id)
                .await?
                .with_context(|| format!("no task `{id}` in {location} (`quorum tasks list` shows the ids)"))?;
            let events = tasks.events(&id, 0).await?;
            if json {
                let mut body = serde_json::to_value(&task)?;
                body["events"] = serde_json::to_value(&events)?;
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            println!("task     {}", task.id);
            println!("status   {}", task.status);
            println!("created  {}   updated {}", ago(task.created_at), ago(task.updated_at));
            if let Some(stage) = task.last_completed_stage {
                println!("last completed stage  {stage}");
            }
            if let Some(error) = &task.error {
                println!("error    {error}");
            }
            println!("input\n  {}", task.input.text.replace('\n', "\n  "));
            for (stage, output) in &task.outputs {
                println!("output of {stage}\n  {}", output.to_string().replace('\n', "\n  "));
            }
            println!("coder attempts {}, review rounds {}", task.attempts.len(), task.reviews.len());
            println!("events");
            for e in events {
                let stage = e.stage.map(|s| format!(" [{s}]")).unwrap_or_default();
                let data = if e.data.is_null() { String::new() } else { format!(" {}", e.data) };
                println!("  {:>4}  {:>9}  {}{stage}{data}", e.seq, ago(e.at), e.kind);
            }
        }
    }
    Ok(())
}

/// `quorum tasks cancel ID`.
async fn cancel(location: &StateLocation, id: &str, server: &str) -> anyhow::Result<()> {
    let store: std::sync::Arc<dyn StateStore> = match location {
        StateLocation::File(path) => match EmbeddedStore::open(path.clone()).await {
            Ok(store) => std::sync::Arc::new(store),
            Err(state::StateError::InUse(_)) => return cancel_through(server, id).await,
            Err(e) => return Err(e.into()),
        },
        StateLocation::Redis(_) => state::open(location).await?,
    };
    match TaskStore::new(store).cancel(id).await? {
        state::Cancel::Done(task) => println!("task {id}: {}", task.status),
        state::Cancel::Requested => {
            println!("task {id}: asked its runner to stop (`quorum tasks show {id}` shows when it has)")
        }
        state::Cancel::Finished(status) => bail!("task {id} has already {status}"),
        state::Cancel::Unknown => bail!("no task `{id}` in {location}"),
    }
    Ok(())
}

/// Asks the server that holds the state file (`QUORUM_API_KEY` is sent as its key).
async fn cancel_through(server: &str, id: &str) -> anyhow::Result<()> {
    let url = format!("{}/api/task/{id}/cancel", server.trim_end_matches('/'));
    let mut request = reqwest::Client::new().post(&url);
    if let Some(key) = std::env::var("QUORUM_API_KEY").ok().and_then(|k| k.split(',').next().map(str::to_string)) {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("a server holds the state file, but {url} does not answer (pass --server)"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{}", body["error"]["message"].as_str().unwrap_or(status.as_str()));
    }
    println!("task {id}: {}", body["status"].as_str().unwrap_or("?"));
    Ok(())
}

/// The store, or `None` when the default file does not exist yet.
async fn open(location: &StateLocation) -> anyhow::Result<Option<TaskStore>> {
    let store: std::sync::Arc<dyn StateStore> = match location {
        StateLocation::File(path) if !path.exists() => return Ok(None),
        StateLocation::File(path) => match EmbeddedStore::open_read_only(path.clone()).await {
            Ok(store) => std::sync::Arc::new(store),
            // Not closed cleanly and no server running: opening it for writing repairs it.
            Err(_) => std::sync::Arc::new(EmbeddedStore::open(path.clone()).await?),
        },
        StateLocation::Redis(_) => state::open(location).await?,
    };
    Ok(Some(TaskStore::new(store)))
}

/// "12s ago", "5m ago", "3h ago", "2d ago".
fn ago(unix_ms: u64) -> String {
    let s = state::now_ms().saturating_sub(unix_ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}
