//! `pipeline` mode: each task becomes a one-file git repository and the whole pipeline
//! runs on it (plan, candidates tested on the visible examples, vote, review). The
//! repository holds `solution.py`, the prompt with `raise NotImplementedError` as the body,
//! and `test_solution.py`, which runs the docstring's examples under pytest, one test each.
//! The hidden `test` never enters the repository. The answer is the pipeline's final diff:
//! the approved change, or the best candidate when no review approved one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::repos::{recall_precision, FileScore, Harness, Prepared, RepoTask, ORACLE_CHECKS};
use super::{io, sandboxed, EvalError, EvalTask, TaskResult};
use crate::models::Role;
use crate::pipeline::{Ask, Event, Logged, Models, PipelineError, Sample, Setup};
use crate::state::{EmbeddedStore, Stage, TaskStore};
use crate::tools::{Tools, Workspace};

const SOLUTION: &str = "solution.py";

/// The visible tests: every example of the task's docstring as its own pytest case, so
/// that the counts and the failure output say which example fails and how. The examples
/// are the task's own, copied into the test: a candidate that rewrites or drops its
/// docstring changes neither them nor their count.
fn examples_test(prompt: &str) -> String {
    let docstring = serde_json::to_string(super::docstring(prompt)).expect("strings serialize");
    format!(
        r#""""The task's docstring examples, run against solution.py, one test each."""
import doctest

import pytest

import solution

DOCSTRING = {docstring}
EXAMPLES = doctest.DocTestParser().get_examples(DOCSTRING)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.source.strip()[:60] for e in EXAMPLES])
def test_example(example):
    test = doctest.DocTest([example], dict(vars(solution)), "solution", "solution.py", 0, DOCSTRING)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, "the example above failed"
"#
    )
}

/// Counts the tokens every role generates (the pipeline does not report them per task).
struct Metered {
    inner: Arc<dyn Models>,
    tokens: AtomicU64,
}

#[async_trait]
impl Models for Metered {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        let samples = self.inner.ask(role, ask).await?;
        self.tokens.fetch_add(samples.iter().map(|s| s.tokens as u64).sum(), Ordering::Relaxed);
        Ok(samples)
    }

    fn count_tokens(&self, role: Role, text: &str) -> usize {
        self.inner.count_tokens(role, text)
    }

    fn parallel(&self, role: Role) -> u32 {
        self.inner.parallel(role)
    }
}

/// What every task of a `pipeline` run shares: the models, the setup and a task
/// store of its own, kept for `quorum tasks show --state FILE`.
pub struct PipelineEval {
    models: Arc<Metered>,
    setup: Setup,
    tasks: TaskStore,
}

impl PipelineEval {
    pub async fn new(models: Arc<dyn Models>, setup: Setup, state: &Path) -> Result<PipelineEval, EvalError> {
        let pytest = tokio::task::spawn_blocking(|| {
            Command::new("pytest").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status()
        });
        if !pytest.await.is_ok_and(|r| r.is_ok_and(|s| s.success())) {
            return Err(EvalError::Run(
                "the pipeline mode runs each task's examples with pytest, which is not on PATH: install it (pip install pytest) and retry".into(),
            ));
        }
        let store = EmbeddedStore::open(state.to_path_buf()).await.map_err(|e| EvalError::Run(e.to_string()))?;
        Ok(PipelineEval {
            models: Arc::new(Metered { inner: models, tokens: AtomicU64::new(0) }),
            setup,
            tasks: TaskStore::new(Arc::new(store)),
        })
    }

    /// Runs one task through the pipeline, then checks the answer and every candidate the
    /// pipeline produced (the oracle) against the hidden test.
    pub async fn run(&self, task: &EvalTask, timeout: Duration) -> Result<TaskResult, EvalError> {
        let stub = format!("{}    raise NotImplementedError\n", task.prompt);
        let repo = {
            let (stub, prompt, id) = (stub.clone(), task.prompt.clone(), task.task_id.clone());
            tokio::task::spawn_blocking(move || repository(&stub, &prompt, &id))
                .await
                .map_err(|e| EvalError::Run(e.to_string()))??
        };
        let workspace = Workspace::new(repo.path()).map_err(|e| EvalError::Run(e.to_string()))?;
        let models: Arc<dyn Models> = self.models.clone();
        let pipeline = self.setup.pipeline(models, Tools::new(workspace), self.tasks.clone());
        let text = format!(
            // No word of tests: the candidates must not touch test_solution.py (see the code stage).
            "Implement `{}` in {SOLUTION}. Its body is only `raise NotImplementedError`: replace that line with code that does \
             exactly what the docstring says, for every case it describes.",
            task.entry_point
        );
        let tokens_before = self.models.tokens.load(Ordering::Relaxed);
        let started = Instant::now();
        let created =
            pipeline.create(&text, false, serde_json::Value::Null).await.map_err(|e| EvalError::Run(e.to_string()))?;
        // A task the pipeline could not finish is a failed answer, not a failed evaluation.
        let run_error = pipeline.run(&created.id).await.err().map(|e| e.to_string());
        let seconds = started.elapsed().as_secs_f64();
        let tokens = (self.models.tokens.load(Ordering::Relaxed) - tokens_before) as u32;
        let (record, events) = self.outcome(&created.id).await?;

        let diff = record.outputs.get(&Stage::Output).and_then(|o| o["diff"].as_str()).unwrap_or_default().to_string();
        // Candidates of later sub-tasks build on earlier patches; the reviewed (combined)
        // changes are against the stub too.
        let diffs = candidate_diffs(&record);
        let (answer, candidates) = tokio::task::spawn_blocking(move || {
            let answer = if diff.is_empty() { Some(stub.clone()) } else { patched(&stub, &diff) };
            (answer, diffs.iter().filter_map(|d| patched(&stub, d)).collect::<Vec<String>>())
        })
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?;

        let (passed, error) = match answer {
            Some(program) => {
                let outcome = sandboxed(program, task, timeout).await?;
                (outcome.passed, run_error.unwrap_or(outcome.error))
            }
            None => (false, "the final diff does not apply".to_string()),
        };
        let mut oracle = passed;
        for program in candidates {
            if oracle {
                break;
            }
            oracle = sandboxed(program, task, timeout).await?.passed;
        }
        Ok(TaskResult {
            task_id: task.task_id.clone(),
            passed,
            tokens,
            seconds,
            hit_limit: false,
            error,
            oracle: Some(oracle),
            stages: stage_seconds(&events),
            files: None,
        })
    }

    /// Runs a repository task through the pipeline on its prepared workspace; the verdict
    /// is the harness's, on the final diff, and the oracle's on the candidates' changes.
    pub async fn run_repo(&self, harness: &Harness, task: &RepoTask) -> Result<TaskResult, EvalError> {
        let prepared = harness.prepare(task).await?;
        let workspace = Workspace::new(&prepared.root).map_err(|e| EvalError::Run(e.to_string()))?;
        let models: Arc<dyn Models> = self.models.clone();
        let pipeline = self.setup.pipeline(models, Tools::new(workspace), self.tasks.clone());
        let tokens_before = self.models.tokens.load(Ordering::Relaxed);
        let started = Instant::now();
        let created = pipeline
            .create(&task.prompt, false, serde_json::Value::Null)
            .await
            .map_err(|e| EvalError::Run(e.to_string()))?;
        let run_error = pipeline.run(&created.id).await.err().map(|e| e.to_string());
        let seconds = started.elapsed().as_secs_f64();
        let tokens = (self.models.tokens.load(Ordering::Relaxed) - tokens_before) as u32;
        let (record, events) = self.outcome(&created.id).await?;
        let planned = events.iter().find_map(|e| match &e.event {
            Event::Plan { plan, .. } => Some(plan.subtasks.iter().flat_map(|s| s.files.clone()).collect::<Vec<_>>()),
            _ => None,
        });
        let files = planned.map(|mut named| {
            named.sort();
            named.dedup();
            let (recall, precision) = recall_precision(&named, &task.files());
            FileScore { recall, precision }
        });
        let (passed, error, oracle) = if self.setup.options.plan_only {
            (files.is_some_and(|f| f.recall == 1.0), run_error.unwrap_or_default(), None)
        } else {
            let (passed, error, oracle) = judge(harness, task, &prepared, &record, run_error).await?;
            (passed, error, Some(oracle))
        };
        Ok(TaskResult {
            task_id: task.task_id.clone(),
            passed,
            tokens,
            seconds,
            hit_limit: false,
            error,
            oracle,
            stages: stage_seconds(&events),
            files,
        })
    }

    /// A finished task's record and its event log.
    async fn outcome(&self, id: &str) -> Result<(crate::state::Task, Vec<Logged>), EvalError> {
        let record = self
            .tasks
            .get(id)
            .await
            .map_err(|e| EvalError::Run(e.to_string()))?
            .ok_or_else(|| EvalError::Run("the eval task vanished".into()))?;
        let events = self.tasks.events(id, 0).await.map_err(|e| EvalError::Run(e.to_string()))?;
        Ok((record, events.iter().map(Logged::from).collect()))
    }
}

/// Whether the task's final diff passes (and why not), and whether any candidate's does.
async fn judge(
    harness: &Harness,
    task: &RepoTask,
    prepared: &Prepared,
    record: &crate::state::Task,
    run_error: Option<String>,
) -> Result<(bool, String, bool), EvalError> {
    let diff = record.outputs.get(&Stage::Output).and_then(|o| o["diff"].as_str()).unwrap_or_default().to_string();
    let (passed, error) = if diff.is_empty() {
        (false, run_error.unwrap_or_else(|| "no change".into()))
    } else if prepared.reset_to(&diff)? {
        let verdict = harness.verdict(task, &prepared.root).await?;
        (verdict.passed, run_error.unwrap_or_else(|| verdict.error()))
    } else {
        (false, "the final diff does not apply".into())
    };
    let mut oracle = passed;
    for diff in candidate_diffs(record).into_iter().take(ORACLE_CHECKS) {
        if oracle {
            break;
        }
        if prepared.reset_to(&diff)? {
            oracle = harness.verdict(task, &prepared.root).await?.passed;
        }
    }
    Ok((passed, error, oracle))
}

/// The distinct changes of the candidates that were not red-flagged and of the reviews.
fn candidate_diffs(record: &crate::state::Task) -> Vec<String> {
    let mut diffs: Vec<String> =
        record.attempts.iter().filter(|a| a.red_flag.is_none()).map(|a| a.diff.clone()).collect();
    diffs.extend(record.reviews.iter().map(|r| r.diff.clone()));
    diffs.retain(|d| !d.is_empty());
    diffs.sort();
    diffs.dedup();
    diffs
}

/// A fresh repository with the stub and the examples test, committed.
fn repository(stub: &str, prompt: &str, task_id: &str) -> Result<tempfile::TempDir, EvalError> {
    let dir = tempfile::Builder::new().prefix("quorum-eval-").tempdir().map_err(io)?;
    std::fs::write(dir.path().join(SOLUTION), stub).map_err(io)?;
    std::fs::write(dir.path().join("test_solution.py"), examples_test(prompt)).map_err(io)?;
    for args in [&["init", "-q"][..], &["add", "."], &["commit", "-q", "--no-verify", "-m", task_id]] {
        crate::git::run(dir.path(), args, None)
            .map_err(|e| EvalError::Run(format!("{e} (in {})", dir.path().display())))?;
    }
    Ok(dir)
}

/// `solution.py` after `diff` (its other files left out), or None when it does not apply.
fn patched(stub: &str, diff: &str) -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join(SOLUTION), stub).ok()?;
    crate::git::run(dir.path(), &["apply", "--include", SOLUTION, "-"], Some(diff)).ok()?;
    std::fs::read_to_string(dir.path().join(SOLUTION)).ok()
}

/// Seconds spent in each stage, summed over its runs, from the task's event log.
fn stage_seconds(events: &[Logged]) -> BTreeMap<String, f64> {
    let mut open: HashMap<Stage, u64> = HashMap::new();
    let mut total = BTreeMap::new();
    for event in events {
        let Some(stage) = event.stage else { continue };
        match event.event {
            Event::StageStarted => {
                open.insert(stage, event.at);
            }
            Event::StageFinished => {
                if let Some(at) = open.remove(&stage) {
                    *total.entry(stage.to_string()).or_insert(0.0) += event.at.saturating_sub(at) as f64 / 1000.0;
                }
            }
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visible_tests_are_the_tasks_examples_whatever_the_docstring_becomes() {
        let prompt = "def double(x):\n    \"\"\"Twice x.\n\n    >>> double(2)\n    4\n    >>> double('a')\n    'aa'\n    \"\"\"\n";
        let repo = repository(&format!("{prompt}    raise NotImplementedError\n"), prompt, "t").unwrap();
        let pytest = |solution: &str| {
            std::fs::write(repo.path().join(SOLUTION), solution).unwrap();
            let out = Command::new("python3")
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
                .current_dir(repo.path())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string()
        };
        // Without a docstring the examples still run, and still count.
        assert!(pytest("def double(x):\n    return x * 2\n").starts_with("2 passed"));
        // Examples rewritten to fit a wrong answer change nothing.
        let rewritten = "def double(x):\n    \"\"\"\n    >>> double(2)\n    5\n    \"\"\"\n    return x + 3\n";
        assert!(pytest(rewritten).starts_with("2 failed"), "{}", pytest(rewritten));
    }

    #[test]
    fn a_diff_applies_to_the_stub_and_a_stale_one_does_not() {
        let stub = "def f():\n    raise NotImplementedError\n";
        let diff = "--- a/solution.py\n+++ b/solution.py\n@@ -1,2 +1,2 @@\n def f():\n-    raise NotImplementedError\n+    return 1\n";
        assert_eq!(patched(stub, diff).as_deref(), Some("def f():\n    return 1\n"));
        assert_eq!(patched("def g():\n    pass\n", diff), None);
    }

    #[test]
    fn stage_time_sums_each_stages_runs() {
        let event = |at, event, stage| Logged { at, stage: Some(stage), event };
        let events = [
            event(0, Event::StageStarted, Stage::Code),
            event(2000, Event::StageFinished, Stage::Code),
            event(2000, Event::StageStarted, Stage::Review),
            event(2500, Event::StageFinished, Stage::Review),
            event(3000, Event::StageStarted, Stage::Code),
            event(4000, Event::StageFinished, Stage::Code),
        ];
        let seconds = stage_seconds(&events);
        assert_eq!(seconds["code"], 3.0);
        assert_eq!(seconds["review"], 0.5);
    }
}
