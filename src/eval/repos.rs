//! The repository set (`quorum eval --repos evals/repos/tasks.jsonl`): tasks on real
//! projects, each a change to make in a real source tree whose revealing tests are hidden.
//! The harness beside the task file (`repos.py`) fetches and prepares the workspaces and
//! gives the verdicts; this module runs quorum on them: `single` (the coder alone, one
//! sample, shown the files a plain search for the task's words finds) or `pipeline`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Deserialize;

use super::{EvalError, TaskResult};
use crate::engine::{ChatMessage, Engine, FinishReason, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;
use crate::pipeline::{retrieve, AnswerFormat, EditBlocks, Ending};
use crate::tools::{Tools, Workspace};

/// Files a `single` answer is shown, at most.
const SINGLE_FILES: usize = 3;
/// Distinct candidate changes whose verdict the oracle checks, at most (each runs a suite).
pub const ORACLE_CHECKS: usize = 4;

#[derive(Debug, Clone, Deserialize)]
pub struct RepoTask {
    pub task_id: String,
    pub project: String,
    pub kind: String,
    pub prompt: String,
    pub inject: Vec<Edit>,
    pub hidden: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Edit {
    pub file: String,
}

impl RepoTask {
    /// The files the reference change touches.
    pub fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.inject.iter().map(|e| e.file.clone()).collect();
        files.sort();
        files.dedup();
        files
    }
}

/// What `repos.py verdict` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub hidden_failed: Vec<String>,
    pub broken: Vec<String>,
    pub broken_count: usize,
}

impl Verdict {
    pub fn error(&self) -> String {
        let mut reasons = Vec::new();
        if !self.hidden_failed.is_empty() {
            reasons.push(format!("hidden tests fail: {}", self.hidden_failed.join(", ")));
        }
        if self.broken_count > 0 {
            reasons.push(format!("{} tests broken: {}", self.broken_count, self.broken.join(", ")));
        }
        reasons.join("; ")
    }
}

/// `repos.py` beside the task file, run with the Python on PATH.
pub struct Harness {
    script: PathBuf,
    tasks: PathBuf,
}

impl Harness {
    pub fn beside(tasks: &Path) -> Result<Harness, EvalError> {
        let tasks = std::fs::canonicalize(tasks)
            .map_err(|source| EvalError::Read { path: tasks.display().to_string(), source })?;
        let script = tasks.with_file_name("repos.py");
        if !script.is_file() {
            return Err(EvalError::Run(format!(
                "{} is missing: the repository set's harness lives beside its task file",
                script.display()
            )));
        }
        Ok(Harness { script, tasks })
    }

    pub fn load(&self) -> Result<Vec<RepoTask>, EvalError> {
        super::load_jsonl(&self.tasks, "task_id, project, kind, prompt, inject and hidden")
    }

    fn run(&self, args: &[&str]) -> Result<String, EvalError> {
        let out = Command::new("python3")
            .arg(&self.script)
            .args(args)
            .env("QUORUM_REPO_TASKS", &self.tasks)
            .output()
            .map_err(|e| EvalError::Run(format!("cannot run python3 {}: {e}", self.script.display())))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            return Err(EvalError::Run(format!(
                "repos.py {} failed: {}",
                args.first().unwrap_or(&""),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The task's workspace (its project fetched on first use), in a directory of its own.
    pub async fn prepare(&self, task: &RepoTask) -> Result<Prepared, EvalError> {
        let dir = tempfile::Builder::new().prefix("quorum-repo-").tempdir().map_err(super::io)?;
        let root = dir.path().join("workspace");
        let this = Harness { script: self.script.clone(), tasks: self.tasks.clone() };
        let (id, at) = (task.task_id.clone(), root.display().to_string());
        blocking(move || this.run(&["prepare", &id, &at])).await?;
        Ok(Prepared { _dir: dir, root })
    }

    /// Whether the tree passes the task's hidden tests and breaks none that passed before.
    pub async fn verdict(&self, task: &RepoTask, tree: &Path) -> Result<Verdict, EvalError> {
        let this = Harness { script: self.script.clone(), tasks: self.tasks.clone() };
        let (id, at) = (task.task_id.clone(), tree.display().to_string());
        let out = blocking(move || this.run(&["verdict", &id, &at])).await?;
        serde_json::from_str(out.trim()).map_err(|e| EvalError::Run(format!("repos.py verdict answered {out:?}: {e}")))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EvalError> + Send + 'static,
) -> Result<T, EvalError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| EvalError::Run(e.to_string()))?
}

/// A prepared workspace; the directory goes when this is dropped.
pub struct Prepared {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Prepared {
    /// Puts the tree back to its commit, then applies `diff` (false when it does not apply).
    pub fn reset_to(&self, diff: &str) -> Result<bool, EvalError> {
        let git = |args: &[&str], input: Option<&str>| crate::git::run(&self.root, args, input);
        git(&["checkout", "-q", "--", "."], None).map_err(|e| EvalError::Run(e.to_string()))?;
        git(&["clean", "-q", "-fd"], None).map_err(|e| EvalError::Run(e.to_string()))?;
        Ok(diff.is_empty() || git(&["apply", "--whitespace=nowarn", "-"], Some(diff)).is_ok())
    }
}

/// Share of `wanted` among `named` (recall) and of `named` among `wanted` (precision).
pub fn recall_precision(named: &[String], wanted: &[String]) -> (f64, f64) {
    let hits = wanted.iter().filter(|w| named.contains(w)).count() as f64;
    let recall = if wanted.is_empty() { 1.0 } else { hits / wanted.len() as f64 };
    let precision = if named.is_empty() { 0.0 } else { hits / named.len() as f64 };
    (recall, precision)
}

/// `single`: the coder alone answers with edit blocks, shown the files a plain search for
/// the task's words finds; one sample at the coder's default temperature.
pub async fn run_single(
    engine: &Engine,
    harness: &Harness,
    task: &RepoTask,
    max_tokens: u32,
) -> Result<TaskResult, EvalError> {
    let coder = engine.role(Role::Coder).ok_or_else(|| EvalError::Run("the coder role is not loaded".into()))?;
    let started = Instant::now();
    let prepared = harness.prepare(task).await?;
    let workspace = Workspace::new(&prepared.root).map_err(|e| EvalError::Run(e.to_string()))?;
    let found = retrieve(&Tools::new(workspace), &task.prompt, &[]).await;
    let format = EditBlocks { paths: Vec::new(), max_blocks: 4 };
    let system = format!("{}\n\n{}", crate::prompts::system_prompt(Role::Coder).trim(), format.instructions());
    let overhead = coder.count_tokens(&system) + coder.count_tokens(&task.prompt) + 100;
    let mut budget = (coder.context_size() as usize).saturating_sub(max_tokens as usize + overhead);
    let (mut files, mut code) = (Vec::new(), String::new());
    for path in found.into_iter().take(SINGLE_FILES) {
        let text = std::fs::read_to_string(prepared.root.join(&path)).unwrap_or_default();
        let mut lines: Vec<&str> = text.lines().collect();
        let mut block = String::new();
        // Cut from the end until the file fits what is left of the context.
        while !lines.is_empty() {
            block = format!("FILE: {path}\n```\n{}\n```\n\n", lines.join("\n"));
            if coder.count_tokens(&block) <= budget {
                break;
            }
            lines.truncate(lines.len() * 3 / 4);
        }
        if lines.is_empty() {
            break;
        }
        budget -= coder.count_tokens(&block);
        code.push_str(&block);
        files.push(path);
    }
    let format = EditBlocks { paths: files.clone(), max_blocks: 4 };
    let user = format!("Task:\n{}\n\nCode:\n{code}{}", task.prompt, format.request());
    let request = GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::new("system", system), ChatMessage::new("user", user)]),
        sampling: SamplingParams {
            max_tokens: Some(max_tokens),
            grammar: Some(format.grammar()),
            stop: format.stops().iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        n: 1,
    };
    let generation = coder.start(request).await.map_err(|e| EvalError::Run(e.to_string()))?;
    let answer = generation.collect().await.map_err(|e| EvalError::Run(e.to_string()))?.remove(0);
    let cut_off = answer.finish == Some(FinishReason::Length);
    let ending = if cut_off { Ending::TokenLimit } else { Ending::Finished };
    let applied = format.apply(&prepared.root, &answer.text, ending);
    let seconds = started.elapsed().as_secs_f64();
    let (passed, error) = match applied {
        Ok(()) => {
            let verdict = harness.verdict(task, &prepared.root).await?;
            (verdict.passed, verdict.error())
        }
        Err(refused) => (false, format!("the answer does not apply: {refused:?}")),
    };
    let (recall, precision) = recall_precision(&files, &task.files());
    Ok(TaskResult {
        task_id: task.task_id.clone(),
        passed,
        tokens: answer.completion_tokens,
        seconds,
        hit_limit: cut_off,
        error,
        oracle: None,
        stages: BTreeMap::from([("code".to_string(), seconds)]),
        files: Some(FileScore { recall, precision }),
    })
}

/// How well the files shown or planned match the files the reference change touches.
#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize)]
pub struct FileScore {
    pub recall: f64,
    pub precision: f64,
}
