//! `quorum eval`: function-completion tasks (`task_id`, `prompt`, `entry_point`, `test`)
//! answered by quorum and checked against their hidden tests in a sandbox. This first
//! part runs the `single` mode (one coder sample, the baseline); the `vote` and
//! `pipeline` modes follow.

pub mod sandbox;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{ChatMessage, Engine, FinishReason, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;

#[derive(Debug, Clone, Deserialize)]
pub struct EvalTask {
    pub task_id: String,
    pub prompt: String,
    pub entry_point: String,
    pub test: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} line {line}: {message} (each line must be a JSON object with task_id, prompt, entry_point and test)")]
    Parse { path: String, line: usize, message: String },
    #[error("{0}")]
    Run(String),
}

/// Reads a JSONL task file; blank lines are skipped.
pub fn load_tasks(path: &Path) -> Result<Vec<EvalTask>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read { path: path.display().to_string(), source })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Parse { path: path.display().to_string(), line: i + 1, message: e.to_string() })
        })
        .collect()
}

/// The program to test: the model's whole function if it wrote one (with the prompt's
/// imports kept), else the prompt followed by the completion as the body.
pub fn program(task: &EvalTask, answer: &str) -> String {
    let code = match answer.split("```").nth(1) {
        Some(block) => block.strip_prefix("python").unwrap_or(block).trim_start_matches('\n').to_string(),
        None => answer.to_string(),
    };
    if code.contains(&format!("def {}(", task.entry_point)) {
        let imports: Vec<&str> =
            task.prompt.lines().filter(|l| l.starts_with("import ") || l.starts_with("from ")).collect();
        format!("{}\n\n{code}", imports.join("\n"))
    } else {
        format!("{}{code}", task.prompt)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub task_id: String,
    pub passed: bool,
    pub tokens: u32,
    pub seconds: f64,
    pub hit_limit: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

const INSTRUCTION: &str = "Complete this Python function. Answer with the whole function in one ```python code block, nothing else.";

/// `single`: one coder sample at the coder's default temperature per task.
pub async fn run_single(
    engine: &Engine,
    task: &EvalTask,
    max_tokens: u32,
    timeout: Duration,
) -> Result<TaskResult, EvalError> {
    let coder = engine.role(Role::Coder).ok_or_else(|| EvalError::Run("the coder role is not loaded".into()))?;
    let started = Instant::now();
    let messages = vec![ChatMessage { role: "user".into(), content: format!("{INSTRUCTION}\n\n```python\n{}```", task.prompt) }];
    let request = GenerateRequest {
        prompt: Prompt::Chat(messages),
        sampling: SamplingParams { max_tokens: Some(max_tokens), ..Default::default() },
        n: 1,
    };
    let generation = coder.submit(request).map_err(|e| EvalError::Run(e.to_string()))?;
    let answer = generation.collect().await.map_err(|e| EvalError::Run(e.to_string()))?.remove(0);
    let program = program(task, &answer.text);
    let (test, entry) = (task.test.clone(), task.entry_point.clone());
    let outcome = tokio::task::spawn_blocking(move || sandbox::check(&program, &test, &entry, timeout))
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?
        .map_err(|e| EvalError::Run(format!("cannot run python3: {e}")))?;
    Ok(TaskResult {
        task_id: task.task_id.clone(),
        passed: outcome.passed,
        tokens: answer.completion_tokens,
        seconds: started.elapsed().as_secs_f64(),
        hit_limit: answer.finish == Some(FinishReason::Length),
        error: outcome.error,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: String,
    pub tasks: usize,
    pub passed: usize,
    pub pass_rate: f64,
    pub tokens: u64,
    pub median_seconds: f64,
    pub network_isolated: bool,
}

pub fn summarize(mode: &str, results: &[TaskResult]) -> Summary {
    let mut times: Vec<f64> = results.iter().map(|r| r.seconds).collect();
    times.sort_by(f64::total_cmp);
    let passed = results.iter().filter(|r| r.passed).count();
    Summary {
        mode: mode.to_string(),
        tasks: results.len(),
        passed,
        pass_rate: if results.is_empty() { 0.0 } else { passed as f64 / results.len() as f64 },
        tokens: results.iter().map(|r| r.tokens as u64).sum(),
        median_seconds: times.get(times.len() / 2).copied().unwrap_or(0.0),
        network_isolated: sandbox::network_isolated(),
    }
}

/// The Markdown table of a run.
pub fn markdown(summary: &Summary) -> String {
    format!(
        "| mode | tasks | passed | pass rate | tokens | median s/task |\n|---|---|---|---|---|---|\n| {} | {} | {} | {:.1}% | {} | {:.1} |\n",
        summary.mode,
        summary.tasks,
        summary.passed,
        summary.pass_rate * 100.0,
        summary.tokens,
        summary.median_seconds
    )
}
