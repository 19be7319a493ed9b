//! `quorum eval`: function-completion tasks (`task_id`, `prompt`, `entry_point`, `test`)
//! answered by quorum and checked against their hidden tests in a sandbox. Modes:
//! `single` (one coder sample, the baseline) and `vote` (candidates from one prefill, red
//! flags, first-to-ahead-by-k voting, no review); the `pipeline` mode follows.

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
    /// `vote`: whether any candidate passes (what a perfect voter would reach).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<bool>,
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
        oracle: None,
    })
}

async fn sandboxed(program: String, task: &EvalTask, timeout: Duration) -> Result<sandbox::Outcome, EvalError> {
    let (test, entry) = (task.test.clone(), task.entry_point.clone());
    tokio::task::spawn_blocking(move || sandbox::check(&program, &test, &entry, timeout))
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?
        .map_err(|e| EvalError::Run(format!("cannot run python3: {e}")))
}

/// `vote`: candidates sampled from one prefill at spread temperatures; red flags (hit the
/// limit, no function, does not parse); identical programs merged; the voter picks by
/// first-to-ahead-by-k. No review. The oracle checks every candidate.
pub async fn run_vote(
    engine: &Engine,
    task: &EvalTask,
    options: &crate::pipeline::PipelineOptions,
    timeout: Duration,
) -> Result<TaskResult, EvalError> {
    use crate::pipeline::voting::{self, Entry};
    let role = |r: Role| engine.role(r).ok_or_else(|| EvalError::Run(format!("the {r} role is not loaded")));
    let (coder, voter) = (role(Role::Coder)?, role(Role::Voter)?);
    let started = Instant::now();
    let temperatures = options.temperatures();
    let messages = vec![ChatMessage { role: "user".into(), content: format!("{INSTRUCTION}\n\n```python\n{}```", task.prompt) }];
    let request = GenerateRequest {
        prompt: Prompt::Chat(messages),
        n: temperatures.len() as u32,
        sampling: SamplingParams { max_tokens: Some(options.coder_max_tokens), temperatures, ..Default::default() },
    };
    let answers = coder.submit(request).map_err(|e| EvalError::Run(e.to_string()))?.collect().await.map_err(|e| EvalError::Run(e.to_string()))?;
    let mut tokens = 0;
    let mut entries = Vec::new();
    for answer in &answers {
        tokens += answer.completion_tokens;
        let program = program(task, &answer.text);
        let red_flag = if answer.finish == Some(FinishReason::Length) {
            Some("hit its token limit".to_string())
        } else if !program.contains(&format!("def {}(", task.entry_point)) {
            Some("no function".to_string())
        } else {
            crate::tools::syntax_error(Path::new("candidate.py"), &program).map(|line| format!("does not parse (line {line})"))
        };
        entries.push(Entry { diff: program, red_flag, tests_passed: None });
    }
    let mut oracle = false;
    for entry in entries.iter().filter(|e| e.red_flag.is_none()) {
        oracle |= sandboxed(entry.diff.clone(), task, timeout).await?.passed;
    }
    let choices = voting::ballot(&entries);
    let winner = if choices.len() <= 1 {
        choices.first().map(|c| c.candidates[0])
    } else {
        let mut prompt = format!("Task:\n```python\n{}```\nCandidate solutions:\n", task.prompt);
        for c in &choices {
            prompt.push_str(&format!("\n{}:\n```python\n{}\n```\n", c.letter, entries[c.candidates[0]].diff.trim()));
        }
        let letters: Vec<String> = choices.iter().map(|c| format!("\"{}\"", c.letter)).collect();
        prompt.push_str("\nWhich solution is correct? Answer with its letter.");
        let grammar = format!("root ::= {}", letters.join(" | "));
        let mut counts = vec![0u32; choices.len()];
        let mut drawn = 0;
        let decision = loop {
            if let Some(d) = voting::decide(&counts, options.k, options.max_votes) {
                break d;
            }
            if drawn >= options.max_votes {
                break voting::Decision { winner: 0, decided_by: voting::DecidedBy::Plurality };
            }
            let n = voting::votes_needed(&counts, options.k, options.max_votes).min(voter.spec().parallel.max(1));
            let ask = GenerateRequest {
                prompt: Prompt::Chat(vec![
                    ChatMessage { role: "system".into(), content: crate::prompts::system_prompt(Role::Voter).trim().into() },
                    ChatMessage { role: "user".into(), content: prompt.clone() },
                ]),
                n,
                sampling: SamplingParams {
                    max_tokens: Some(2),
                    temperatures: vec![options.vote_temperature; n as usize],
                    grammar: Some(grammar.clone()),
                    ..Default::default()
                },
            };
            for vote in voter.submit(ask).map_err(|e| EvalError::Run(e.to_string()))?.collect().await.map_err(|e| EvalError::Run(e.to_string()))? {
                drawn += 1;
                tokens += vote.completion_tokens;
                if let Some(slot) = choices.iter().position(|c| vote.text.trim().starts_with(c.letter)) {
                    counts[slot] += 1;
                }
            }
        };
        Some(choices[decision.winner].candidates[0])
    };
    let (passed, error) = match winner {
        Some(i) => {
            let outcome = sandboxed(entries[i].diff.clone(), task, timeout).await?;
            (outcome.passed, outcome.error)
        }
        None => (false, "every candidate was red-flagged".to_string()),
    };
    Ok(TaskResult {
        task_id: task.task_id.clone(),
        passed,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
        hit_limit: answers.iter().all(|a| a.finish == Some(FinishReason::Length)),
        error,
        oracle: Some(oracle),
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
    /// `vote`: the share of tasks where some candidate passes.
    pub oracle_rate: Option<f64>,
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
        network_isolated: sandbox::network_isolated(),
    }
}

/// The Markdown table of a run.
pub fn markdown(summary: &Summary) -> String {
    let oracle = summary.oracle_rate.map(|o| format!("{:.1}%", o * 100.0)).unwrap_or_else(|| "-".into());
    format!(
        "| mode | tasks | passed | pass rate | oracle | tokens | median s/task |\n|---|---|---|---|---|---|---|\n| {} | {} | {} | {:.1}% | {} | {} | {:.1} |\n",
        summary.mode,
        summary.tasks,
        summary.passed,
        summary.pass_rate * 100.0,
        oracle,
        summary.tokens,
        summary.median_seconds
    )
}
