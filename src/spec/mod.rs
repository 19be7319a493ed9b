//! spec-kit's commands carried out by quorum's models: the project's own command template
//! is read ([`crate::tools::speckit`]), its `$ARGUMENTS` filled, its helper script run
//! ([`script`]), and then the command done by the roles of the original design:
//! `specify` and `clarify` on the planner (after the preprocessor has made the request
//! text), `plan`, `tasks`, `checklist` and `constitution` on the planner with the
//! codebase's files ([`author`], section by section), `implement` on the whole pipeline
//! ([`implement`]); any other command (`analyze`, `converge`, new ones) answers a report
//! and writes nothing. Every write goes through [`files::Writable`]; every document is
//! checked against its template ([`document`]) and reported as not done while it fails.

mod analysis;
mod author;
mod blanks;
mod commands;
mod document;
mod files;
mod implement;
mod init;
mod script;
mod tasklist;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

pub use self::init::init;
use crate::models::Role;
use crate::pipeline::{Models, Pipeline};
use crate::tools::speckit::{self, SpecCommand};
use crate::tools::{ToolError, Tools};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("spec-kit's {script}: {message}")]
    Script { script: String, message: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
    #[error("model: {0}")]
    Model(String),
    #[error("{0}")]
    Document(String),
    /// `specify` is missing or failed (`quorum spec init`).
    #[error("{0}")]
    Setup(String),
}

/// Where a command's progress lines go (a terminal, a chat stream), besides the log.
#[derive(Clone, Default)]
pub struct Progress(Option<tokio::sync::mpsc::UnboundedSender<String>>);

impl Progress {
    pub fn channel() -> (Progress, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Progress(Some(tx)), rx)
    }

    pub fn say(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(target: "quorum::spec", "{line}");
        if let Some(tx) = &self.0 {
            let _ = tx.send(line);
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    /// Every document written passed its checks, every task asked for was done.
    pub done: bool,
    /// Files written, relative to the workspace.
    pub files: Vec<String>,
    /// Why it is not done.
    pub problems: Vec<String>,
    /// The command's own answer (a report, the questions asked and answered).
    pub answer: String,
    /// The next commands the template suggests.
    pub next: Vec<String>,
}

impl Report {
    /// The report as Markdown, for a chat answer or a terminal.
    pub fn summary(&self) -> String {
        let mut out = format!("/speckit.{}: {}", self.command, if self.done { "done" } else { "NOT done" });
        for file in &self.files {
            out.push_str(&format!("\n- wrote {file}"));
        }
        for problem in &self.problems {
            out.push_str(&format!("\n- problem: {problem}"));
        }
        if !self.answer.trim().is_empty() {
            out.push_str(&format!("\n\n{}", self.answer.trim()));
        }
        if self.done && !self.next.is_empty() {
            out.push_str(&format!("\n\nNext: {}", self.next.join("; ")));
        }
        out
    }
}

/// `/speckit.NAME arguments` at the start of a message: the command and its arguments.
pub fn slash_command(text: &str) -> Option<(String, String)> {
    let rest = text.trim_start().strip_prefix("/speckit.")?;
    let (name, arguments) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then(|| (name.to_string(), arguments.trim().to_string()))
}

/// Runs spec-kit commands on a pipeline's models and workspaces.
#[derive(Clone)]
pub struct SpecKit {
    pipeline: Pipeline,
}

/// One command being carried out.
struct Run<'a> {
    models: &'a dyn Models,
    pipeline: &'a Pipeline,
    tools: &'a Tools,
    root: PathBuf,
    command: SpecCommand,
    instructions: String,
    arguments: String,
    /// What the command's script answered.
    paths: Map<String, Value>,
    /// The role that writes the documents.
    writer: Role,
    /// `implement`: stop after this many tasks (options `tasks`).
    task_limit: Option<usize>,
    options: Value,
    progress: &'a Progress,
}

impl SpecKit {
    pub fn new(pipeline: Pipeline) -> SpecKit {
        SpecKit { pipeline }
    }

    /// The commands the workspace has.
    pub fn commands(tools: &Tools) -> Result<Vec<SpecCommand>, SpecError> {
        Ok(speckit::list(tools.workspace().root())?)
    }

    /// Carries out `/speckit.NAME arguments` on the workspace of `tools`; `options` are
    /// pipeline options for `implement`.
    pub async fn run(
        &self,
        tools: &Tools,
        name: &str,
        arguments: &str,
        options: Value,
        progress: &Progress,
    ) -> Result<Report, SpecError> {
        let root = tools.workspace().root().to_path_buf();
        let command = speckit::find(&root, name)?;
        progress.say(format!("/speckit.{}: {}", command.name, command.description));
        let paths = match command.script_call()? {
            Some(call) => {
                progress.say(format!("running {} {}", call.path, call.args.join(" ")));
                script::run(&root, &call, arguments).await?
            }
            None => Map::new(),
        };
        let models: &dyn Models = self.pipeline.models().as_ref();
        let (writer, mut options) = writer(models, options)?;
        let task_limit = match options.as_object_mut().and_then(|o| o.remove("tasks")) {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| SpecError::Refused("options.tasks must be a positive number of tasks".into()))?
                    as usize,
            ),
        };
        let run = Run {
            models,
            pipeline: &self.pipeline,
            tools,
            root,
            instructions: command.fill(arguments),
            command,
            arguments: arguments.to_string(),
            paths,
            writer,
            task_limit,
            options,
            progress,
        };
        let mut report = commands::carry_out(&run).await?;
        report.next = run.command.handoffs.iter().map(|h| format!("/{} ({})", h.agent, h.label)).collect();
        Ok(report)
    }
}

/// Below this a planner model copies its instructions into the documents instead of
/// writing them (Qwen2.5-Coder 0.5B did, every section; `benches` has no figure for it,
/// the README's spec-kit section does).
const SMALL_PLANNER: u64 = 1_000_000_000;

/// The role that writes documents: the options' `writer`, else the planner, unless the
/// planner's model is small and the coder's larger (the small profile).
fn writer(models: &dyn Models, options: Value) -> Result<(Role, Value), SpecError> {
    let mut options = match options {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(SpecError::Refused("options must be a JSON object".into())),
    };
    let asked = options.remove("writer");
    let role = match asked.as_ref().and_then(Value::as_str) {
        None | Some("auto") => {
            let (planner, coder) = (models.parameters(Role::Planner), models.parameters(Role::Coder));
            if planner > 0 && planner < SMALL_PLANNER && coder > planner {
                Role::Coder
            } else {
                Role::Planner
            }
        }
        Some(name) => name.parse().map_err(|_| SpecError::Refused(format!("options.writer: no role `{name}`")))?,
    };
    Ok((role, Value::Object(options)))
}

impl Run<'_> {
    fn report(&self) -> Report {
        let command = self.command.name.clone();
        Report { command, done: true, files: Vec::new(), problems: Vec::new(), answer: String::new(), next: Vec::new() }
    }

    /// A path the script answered.
    fn path(&self, key: &str) -> Option<PathBuf> {
        self.paths.get(key).and_then(Value::as_str).map(|p| self.root.join(p))
    }

    /// The feature's directory, as the script said (directly, or as the folder of its spec).
    fn feature_dir(&self) -> Result<PathBuf, SpecError> {
        self.path("FEATURE_DIR")
            .or_else(|| self.path("FEATURE_SPEC").and_then(|p| p.parent().map(Path::to_path_buf)))
            .ok_or_else(|| {
                SpecError::Document(
                    "the command's script named no feature directory; run /speckit.specify first".into(),
                )
            })
    }

    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}
