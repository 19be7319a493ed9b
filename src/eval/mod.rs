//! `quorum eval`: function-completion tasks (`task_id`, `prompt`, `entry_point`, `test`)
//! answered by quorum and checked against their hidden tests in a sandbox. Modes:
//! `single` (one coder sample, the baseline) and `vote` (candidates from one prefill, red
//! flags, first-to-ahead-by-k voting, no review) ask the models directly ([`direct`]);
//! `pipeline` runs the whole pipeline on a one-file repository per task ([`pipeline`]).
//! The repository set ([`repos`]) runs `single` and `pipeline` on real projects.

pub mod chart;
mod direct;
mod pipeline;
pub mod repos;
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
    #[error("{path} line {line}: {message}")]
    Parse { path: String, line: usize, message: String },
    #[error("{0}")]
    Run(String),
}

/// Reads a JSONL task file; blank lines are skipped.
pub fn load_tasks(path: &Path) -> Result<Vec<EvalTask>, EvalError> {
    load_jsonl(path, "task_id, prompt, entry_point and test")
}

/// One `T` per non-blank line of a JSONL file; `fields` names what each line must have.
fn load_jsonl<T: serde::de::DeserializeOwned>(path: &Path, fields: &str) -> Result<Vec<T>, EvalError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EvalError::Read { path: path.display().to_string(), source })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Parse {
                path: path.display().to_string(),
                line: i + 1,
                message: format!("{e} (each line must be a JSON object with {fields})"),
            })
        })
        .collect()
}

fn io(e: std::io::Error) -> EvalError {
    EvalError::Run(format!("eval workspace: {e}"))
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
    /// Repository tasks: the files shown (`single`) or planned (`pipeline`) against the
    /// files the reference change touches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<repos::FileScore>,
}

/// Whether an answer is right: it passes the examples the task's docstring shows and the
/// task's hidden test. The hidden tests try other inputs than the examples
/// (evals/validate.py keeps them apart), so an answer can pass them and still get a shown
/// example wrong: on quorum/3, four of five `single` samples did.
async fn sandboxed(program: String, task: &EvalTask, timeout: Duration) -> Result<sandbox::Outcome, EvalError> {
    run_check(program, verdict(task), task.entry_point.clone(), timeout).await
}

/// The test behind [`sandboxed`]: one `check` that runs the examples' check, then the hidden one.
fn verdict(task: &EvalTask) -> String {
    let (examples, hidden) = (examples_check(&task.prompt), &task.test);
    format!(
        "{examples}\n_examples_check = check\n\n{hidden}\n_hidden_check = check\n\n\n\
         def check(candidate):\n    _examples_check(candidate)\n    _hidden_check(candidate)\n"
    )
}

/// A `check` that runs the docstring's examples (the visible tests) against the candidate.
fn examples_check(prompt: &str) -> String {
    let docstring = serde_json::to_string(docstring(prompt)).expect("strings serialize");
    format!(
        "import doctest as _doctest\n\n\ndef check(candidate):\n    \
         test = _doctest.DocTestParser().get_doctest({docstring}, dict(candidate.__globals__), 'examples', None, 0)\n    \
         runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)\n    \
         runner.run(test)\n    \
         assert test.examples and runner.failures == 0, 'an example of the docstring fails'\n"
    )
}

/// Runs a program against a `check(candidate)` test in the sandbox, off the async threads.
async fn run_check(
    program: String,
    test: String,
    entry: String,
    timeout: Duration,
) -> Result<sandbox::Outcome, EvalError> {
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
    /// Repository tasks: the mean file recall and precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<repos::FileScore>,
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
        oracle_rate: results
            .iter()
            .map(|r| r.oracle)
            .collect::<Option<Vec<bool>>>()
            .filter(|o| !o.is_empty())
            .map(|o| o.iter().filter(|&&x| x).count() as f64 / o.len() as f64),
        stage_seconds: results.iter().flat_map(|r| &r.stages).fold(BTreeMap::new(), |mut sum, (stage, s)| {
            *sum.entry(stage.clone()).or_insert(0.0) += s;
            sum
        }),
        network_isolated: sandbox::network_isolated(),
        files: mean_files(results),
    }
}

fn mean_files(results: &[TaskResult]) -> Option<repos::FileScore> {
    let scores: Vec<repos::FileScore> = results.iter().filter_map(|r| r.files).collect();
    let mean = |f: fn(&repos::FileScore) -> f64| scores.iter().map(f).sum::<f64>() / scores.len() as f64;
    (!scores.is_empty()).then(|| repos::FileScore { recall: mean(|s| s.recall), precision: mean(|s| s.precision) })
}

/// The Markdown tables of runs: one row per mode, then where each mode's time went.
pub fn markdown(summaries: &[Summary]) -> String {
    let mut text = String::from(
        "| mode | tasks | passed | pass rate | oracle | tokens | median s/task | file recall | file precision |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let oracle = s.oracle_rate.map(|o| format!("{:.1}%", o * 100.0)).unwrap_or_else(|| "-".into());
        let percent = |f: Option<f64>| f.map(|f| format!("{:.0}%", f * 100.0)).unwrap_or_else(|| "-".into());
        let (recall, precision) = (percent(s.files.map(|f| f.recall)), percent(s.files.map(|f| f.precision)));
        text.push_str(&format!(
            "| {} | {} | {} | {:.1}% | {} | {} | {:.1} | {recall} | {precision} |\n",
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

#[cfg(test)]
mod tests {
    use super::{examples_check, sandbox, verdict, EvalTask};
    use std::time::Duration;

    const PROMPT: &str =
        "def double(x):\n    \"\"\"Twice x.\n\n    >>> double(2)\n    4\n    >>> double('a')\n    'aa'\n    \"\"\"\n";

    #[test]
    fn the_examples_check_runs_the_docstring_examples() {
        let check = examples_check(PROMPT);
        let timeout = Duration::from_secs(10);
        let right = sandbox::check(&format!("{PROMPT}    return x * 2\n"), &check, "double", timeout).unwrap();
        assert!(right.passed, "{right:?}");
        let wrong = sandbox::check(
            &format!("{PROMPT}    return x + x if isinstance(x, int) else x\n"),
            &check,
            "double",
            timeout,
        )
        .unwrap();
        assert!(!wrong.passed);
    }

    #[test]
    fn an_answer_is_right_only_if_it_passes_the_examples_and_the_hidden_test() {
        // The hidden test tries only numbers; the docstring also shows a string.
        let task = EvalTask {
            task_id: "t/0".into(),
            prompt: PROMPT.into(),
            entry_point: "double".into(),
            test: "def check(candidate):\n    assert candidate(3) == 6\n    assert candidate(0) == 0\n".into(),
        };
        let timeout = Duration::from_secs(10);
        let run = |body: &str| sandbox::check(&format!("{PROMPT}{body}"), &verdict(&task), "double", timeout).unwrap();
        let right = run("    return x * 2\n");
        assert!(right.passed, "{right:?}");
        let fails_an_example = run("    return x + x if isinstance(x, int) else x\n");
        assert!(!fails_an_example.passed);
        assert!(fails_an_example.error.contains("an example of the docstring fails"), "{}", fails_an_example.error);
        let fails_the_hidden_test = run("    return 4 if x == 2 else x * 2 if isinstance(x, str) else -1\n");
        assert!(!fails_the_hidden_test.passed);
        assert!(!fails_the_hidden_test.error.contains("example"), "{}", fails_the_hidden_test.error);
    }
}
