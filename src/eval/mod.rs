//! `quorum eval`: function-completion tasks (`task_id`, `prompt`, `entry_point`, `test`)
//! answered by quorum and checked against their hidden tests in a sandbox. Modes:
//! `single` (one coder sample, the baseline) and `vote` (candidates from one prefill, red
//! flags, first-to-ahead-by-k voting, no review) ask the models directly ([`direct`]);
//! `pipeline` runs the whole pipeline on a one-file repository per task ([`pipeline`]).

pub mod chart;
mod direct;
mod pipeline;
pub mod sandbox;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::direct::{run_single, run_vote};
pub use self::pipeline::PipelineEval;

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

/// The prompt's docstring alone, where its examples are: after its closing quotes,
/// doctest would read the rest of the prompt as an example's output.
pub fn docstring(prompt: &str) -> &str {
    prompt.split("\"\"\"").nth(1).unwrap_or(prompt)
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
    /// `vote` and `pipeline`: whether any candidate passes (what a perfect chooser would reach).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<bool>,
    /// Seconds per stage of producing the answer (the hidden checks are not counted).
    pub stages: BTreeMap<String, f64>,
}

/// Runs a program against the task's hidden test in the sandbox, off the async threads.
async fn sandboxed(program: String, task: &EvalTask, timeout: Duration) -> Result<sandbox::Outcome, EvalError> {
    let (test, entry) = (task.test.clone(), task.entry_point.clone());
    tokio::task::spawn_blocking(move || sandbox::check(&program, &test, &entry, timeout))
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?
        .map_err(|e| EvalError::Run(format!("cannot run python3: {e}")))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub mode: String,
    pub tasks: usize,
    pub passed: usize,
    pub pass_rate: f64,
    pub tokens: u64,
    pub median_seconds: f64,
    /// The share of tasks where some candidate passes (`vote`, `pipeline`).
    pub oracle_rate: Option<f64>,
    /// Seconds per stage, summed over the tasks.
    pub stage_seconds: BTreeMap<String, f64>,
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
        oracle_rate: results.iter().map(|r| r.oracle).collect::<Option<Vec<bool>>>().filter(|o| !o.is_empty()).map(|o| o.iter().filter(|&&x| x).count() as f64 / o.len() as f64),
        stage_seconds: results.iter().flat_map(|r| &r.stages).fold(BTreeMap::new(), |mut sum, (stage, s)| {
            *sum.entry(stage.clone()).or_insert(0.0) += s;
            sum
        }),
        network_isolated: sandbox::network_isolated(),
    }
}

/// The Markdown tables of runs: one row per mode, then where each mode's time went.
pub fn markdown(summaries: &[Summary]) -> String {
    let mut text = String::from("| mode | tasks | passed | pass rate | oracle | tokens | median s/task |\n|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let oracle = s.oracle_rate.map(|o| format!("{:.1}%", o * 100.0)).unwrap_or_else(|| "-".into());
        text.push_str(&format!(
            "| {} | {} | {} | {:.1}% | {} | {} | {:.1} |\n",
            s.mode,
            s.tasks,
            s.passed,
            s.pass_rate * 100.0,
            oracle,
            s.tokens,
            s.median_seconds
        ));
    }
    text.push_str("\n| mode | stage | seconds | share |\n|---|---|---|---|\n");
    for s in summaries {
        let total: f64 = s.stage_seconds.values().sum();
        for (stage, secs) in &s.stage_seconds {
            let share = if total > 0.0 { secs / total * 100.0 } else { 0.0 };
            text.push_str(&format!("| {} | {stage} | {secs:.1} | {share:.0}% |\n", s.mode));
        }
    }
    text
}
