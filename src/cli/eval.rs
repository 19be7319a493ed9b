//! `quorum eval --tasks FILE.jsonl --mode single,vote,pipeline [--limit N] [--out DIR]`,
//! `quorum eval --repos evals/repos/tasks.jsonl --mode single,pipeline` (the repository
//! set, results in eval-out/repos unless --out says otherwise), and
//! `quorum eval --report --out DIR` to redraw a results file's summary and chart.
//!
//! `results.json` in the output directory keeps one entry per mode, so modes run at
//! different times add up; it is rewritten after every task, so a long run that stops
//! keeps what it measured. `summary.md` and `chart.png` show every mode in it. The
//! `pipeline` mode's task records go to `tasks.redb` there (`quorum tasks show --state`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::ModelArgs;
use crate::eval::{self, PipelineEval, TaskResult};
use crate::models::Role;
use crate::pipeline::{EngineModels, PipelineOptions, Setup};

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Mode {
    /// One coder sample per task (the baseline).
    Single,
    /// Candidates from one prefill, red flags, voting; no review.
    Vote,
    /// The whole pipeline on a one-file repository per task; its tests are the examples.
    Pipeline,
    /// Repository tasks: the planner alone (preprocess and plan); a task passes when its
    /// plan names every file the reference change touches.
    Plan,
}

impl Mode {
    const ORDER: [&'static str; 4] = ["single", "vote", "pipeline", "plan"];

    fn name(self) -> &'static str {
        Self::ORDER[self as usize]
    }

    fn roles(self) -> &'static [Role] {
        match self {
            Mode::Single => &[Role::Coder],
            Mode::Vote => &[Role::Coder, Role::Voter],
            Mode::Pipeline => &[Role::Planner, Role::Coder, Role::Voter, Role::Reviewer],
            Mode::Plan => &[Role::Planner],
        }
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// JSONL tasks: task_id, prompt, entry_point, test.
    #[arg(long, required_unless_present_any = ["report", "repos"], conflicts_with = "repos")]
    pub tasks: Option<PathBuf>,
    /// The repository set's JSONL tasks (its harness, repos.py, beside it): changes to real
    /// projects judged by their hidden tests. Modes single and pipeline.
    #[arg(long)]
    pub repos: Option<PathBuf>,
    /// Only the tasks whose id starts with one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Run nothing: redraw summary.md and chart.png from OUT/results.json (after merging
    /// results of runs made apart, say).
    #[arg(long)]
    pub report: bool,
    /// One mode or several, comma-separated, run one after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "single")]
    pub mode: Vec<Mode>,
    /// Only the first N tasks.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where results.json, summary.md and chart.png go (default eval-out, or eval-out/repos
    /// with --repos).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Tokens a coder answer may use.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Seconds each hidden test may run (and `pipeline`'s examples, unless the options set
    /// `test_timeout_secs`).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// `vote`: leave the docstring's examples unrun (voting on the code alone).
    #[arg(long)]
    pub no_examples: bool,
    /// Pipeline options as JSON over the config file's [pipeline], e.g. '{"max_rounds": 2}'.
    #[arg(long)]
    pub options: Option<String>,
    #[command(flatten)]
    pub models: ModelArgs,
}

/// The tasks of one run: function tasks, or the repository set with its harness.
enum TaskSet {
    Functions(Vec<eval::EvalTask>),
    Repos(eval::repos::Harness, Vec<eval::repos::RepoTask>),
}

impl TaskSet {
    fn load(args: &EvalArgs) -> anyhow::Result<TaskSet> {
        let keep = |id: &str| args.only.is_empty() || args.only.iter().any(|p| id.starts_with(p.as_str()));
        let mut set = match &args.repos {
            Some(path) => {
                let harness = eval::repos::Harness::beside(path)?;
                let tasks = harness.load()?;
                TaskSet::Repos(harness, tasks.into_iter().filter(|t| keep(&t.task_id)).collect())
            }
            None => {
                let path = args.tasks.as_deref().expect("clap requires --tasks without --report or --repos");
                TaskSet::Functions(eval::load_tasks(path)?.into_iter().filter(|t| keep(&t.task_id)).collect())
            }
        };
        let limit = args.limit.unwrap_or(usize::MAX);
        match &mut set {
            TaskSet::Functions(tasks) => tasks.truncate(limit),
            TaskSet::Repos(_, tasks) => tasks.truncate(limit),
        }
        Ok(set)
    }

    fn ids(&self) -> Vec<String> {
        match self {
            TaskSet::Functions(tasks) => tasks.iter().map(|t| t.task_id.clone()).collect(),
            TaskSet::Repos(_, tasks) => tasks.iter().map(|t| t.task_id.clone()).collect(),
        }
    }
}

pub async fn run(args: EvalArgs, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| {
        if args.repos.is_some() {
            PathBuf::from("eval-out/repos")
        } else {
            PathBuf::from("eval-out")
        }
    });
    let results_path = out.join("results.json");
    if args.report {
        anyhow::ensure!(
            results_path.exists(),
            "{} does not exist: run some modes first, or pass the --out of a run",
            results_path.display()
        );
        return report(&out, &read_results(&results_path)?);
    }
    let set = TaskSet::load(&args)?;
    if matches!(set, TaskSet::Repos(..)) && args.mode.contains(&Mode::Vote) {
        anyhow::bail!("the repository set runs the modes single, pipeline and plan (vote asks for whole functions)");
    }
    if matches!(set, TaskSet::Functions(..)) && args.mode.contains(&Mode::Plan) {
        anyhow::bail!("the plan mode measures the files plans name on the repository set (--repos)");
    }
    let config = args.models.config(config, None, None, None, None)?;
    let overrides: Value = match &args.options {
        Some(text) => serde_json::from_str(text).context("--options is not valid JSON")?,
        None => Value::Null,
    };
    let setup = Setup::from_config(&config, &overrides).context("invalid pipeline options")?;
    let options = setup.options.clone();
    // The visible examples of function tasks get the hidden tests' time limit: a candidate
    // that loops would otherwise hold the task for the pipeline's default of minutes.
    // Repository tasks keep the pipeline's own limit: their suites are real.
    let set_by_user = |options: &Value| options.get("test_timeout_secs").is_some();
    let test_timeout_secs = if set_by_user(&overrides) || set_by_user(&config.pipeline) || args.repos.is_some() {
        options.test_timeout_secs
    } else {
        args.timeout
    };
    let options = PipelineOptions { coder_max_tokens: args.max_tokens, test_timeout_secs, ..options };
    let mut roles: Vec<Role> = args.mode.iter().flat_map(|m| m.roles().iter().copied()).collect();
    if options.rewrite_task && roles.contains(&Role::Planner) {
        roles.push(Role::Preprocessor);
    }
    roles.sort();
    roles.dedup();
    let engine = {
        let (config, roles) = (config.clone(), roles.clone());
        Arc::new(tokio::task::spawn_blocking(move || crate::app::load_roles(&config, &roles)).await??)
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut saved = read_results(&results_path)?;
    let timeout = Duration::from_secs(args.timeout);
    let ids = set.ids();
    for &mode in &args.mode {
        let pipeline = match mode {
            Mode::Pipeline | Mode::Plan => {
                let plan_only = mode == Mode::Plan;
                let setup = Setup { options: PipelineOptions { plan_only, ..options.clone() }, ..setup.clone() };
                let state = out.join("tasks.redb");
                Some(PipelineEval::new(Arc::new(EngineModels(engine.clone())), setup, &state).await?)
            }
            _ => None,
        };
        let bar = ProgressBar::new(ids.len() as u64).with_style(
            ProgressStyle::with_template("{prefix:>8} {bar:30} {pos}/{len} {msg} [{elapsed}]").expect("valid template"),
        );
        bar.set_prefix(mode.name());
        let mut results: Vec<TaskResult> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            bar.set_message(id.clone());
            let result = match (&set, &pipeline, mode) {
                (TaskSet::Functions(tasks), Some(p), _) => p.run(&tasks[i], timeout).await?,
                (TaskSet::Functions(tasks), None, Mode::Vote) => {
                    eval::run_vote(&engine, &tasks[i], &options, !args.no_examples, timeout).await?
                }
                (TaskSet::Functions(tasks), None, _) => {
                    eval::run_single(&engine, &tasks[i], args.max_tokens, timeout).await?
                }
                (TaskSet::Repos(harness, tasks), Some(p), _) => p.run_repo(harness, &tasks[i]).await?,
                (TaskSet::Repos(harness, tasks), None, _) => {
                    eval::repos::run_single(&engine, harness, &tasks[i], args.max_tokens).await?
                }
            };
            results.push(result);
            saved[mode.name()] = json!({"summary": eval::summarize(mode.name(), &results), "results": results});
            write(&results_path, &serde_json::to_string_pretty(&saved)?)?;
            let passed = results.iter().filter(|r| r.passed).count();
            bar.set_message(format!("{passed} passed"));
            bar.inc(1);
        }
        bar.finish();
    }
    report(&out, &saved)
}

/// The modes measured so far in `path`, or none.
fn read_results(path: &Path) -> anyhow::Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not an eval results file; pass another --out", path.display()))?;
            let modes_only = value.as_object().is_some_and(|o| o.keys().all(|k| Mode::ORDER.contains(&k.as_str())));
            anyhow::ensure!(
                modes_only,
                "{} is not a results file of this quorum eval; pass another --out",
                path.display()
            );
            Ok(value)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes through a temporary file and a rename, so a run killed mid-write leaves the
/// previous results whole.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// summary.md and chart.png over every mode in the results, in the modes' order.
fn report(out: &Path, saved: &Value) -> anyhow::Result<()> {
    let summaries: Vec<eval::Summary> = Mode::ORDER
        .iter()
        .filter_map(|m| saved.get(*m))
        .map(|entry| serde_json::from_value(entry["summary"].clone()))
        .collect::<Result<_, _>>()
        .context("results.json has an unreadable summary")?;
    let table = eval::markdown(&summaries);
    write(&out.join("summary.md"), &table)?;
    eval::chart::draw(&summaries, &out.join("chart.png"))?;
    println!("{table}");
    Ok(())
}
