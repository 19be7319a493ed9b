//! `quorum eval`: the task file, the sandbox that runs hidden tests, and a real run of the
//! `single` mode on two tasks with Qwen2.5-Coder-0.5B.

use std::process::Command;
use std::time::Duration;

use quorum::eval::{load_tasks, program, sandbox};
use serde_json::Value;

use super::support::{quorum_bin, repo_root};

fn tasks() -> Vec<quorum::eval::EvalTask> {
    load_tasks(&repo_root().join("evals/tasks.jsonl")).unwrap()
}

fn canonical(n: usize) -> String {
    let line =
        std::fs::read_to_string(repo_root().join("evals/tasks.jsonl")).unwrap().lines().nth(n).unwrap().to_string();
    serde_json::from_str::<Value>(&line).unwrap()["canonical_solution"].as_str().unwrap().to_string()
}

#[test]
fn the_task_file_has_forty_tasks_and_bad_files_are_explained() {
    let all = tasks();
    assert_eq!(all.len(), 40);
    assert!(all.iter().all(|t| t.prompt.contains(&format!("def {}(", t.entry_point)) && t.test.contains("def check(")));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"task_id\": \"x\"}\n").unwrap();
    let message = load_tasks(&bad).unwrap_err().to_string();
    assert!(message.contains("line 1") && message.contains("entry_point"), "{message}");
}

#[test]
fn the_sandbox_passes_right_answers_and_fails_wrong_ones() {
    let task = &tasks()[4];
    let timeout = Duration::from_secs(10);
    let right =
        sandbox::check(&format!("{}{}", task.prompt, canonical(4)), &task.test, &task.entry_point, timeout).unwrap();
    assert!(right.passed, "{right:?}");
    let wrong =
        sandbox::check(&format!("{}    return s\n", task.prompt), &task.test, &task.entry_point, timeout).unwrap();
    assert!(!wrong.passed && wrong.error.contains("AssertionError"), "{wrong:?}");
}

#[test]
fn the_sandbox_stops_loops_memory_hogs_and_the_network() {
    let test = "def check(candidate):\n    assert candidate() == 1\n";
    let looping =
        sandbox::check("def f():\n    while True:\n        pass\n", test, "f", Duration::from_secs(2)).unwrap();
    assert!(looping.timed_out && !looping.passed);
    let hog =
        sandbox::check("def f():\n    x = bytearray(4 << 30)\n    return 1\n", test, "f", Duration::from_secs(10))
            .unwrap();
    assert!(!hog.passed && hog.error.contains("MemoryError"), "{hog:?}");
    if sandbox::network_isolated() {
        let net = "import socket\ndef f():\n    s = socket.socket()\n    s.settimeout(2)\n    return 1 if s.connect_ex(('1.1.1.1', 80)) == 0 else 0\n";
        assert!(!sandbox::check(net, test, "f", Duration::from_secs(10)).unwrap().passed, "no network");
    }
    let env = "import os\ndef f():\n    return 1 if 'HOME' not in os.environ else 0\n";
    assert!(sandbox::check(env, test, "f", Duration::from_secs(10)).unwrap().passed, "an empty environment");
}

#[test]
fn answers_become_programs_whole_or_as_a_body() {
    let task = &tasks()[4];
    let whole = format!("Here:\n```python\ndef {}(s, keep):\n    return s\n```\n", task.entry_point);
    assert!(program(task, &whole).trim_start().starts_with(&format!("def {}(s, keep)", task.entry_point)));
    let body = "    return s\n";
    assert!(program(task, body).starts_with(&task.prompt) && program(task, body).ends_with(body));
}

/// Runs `quorum eval` on the first `n` tasks with Qwen2.5-Coder-0.5B in the given roles;
/// returns its output and results directory.
fn eval_first(n: usize, mode: &str, model: &str, extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let qwen = repo_root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(quorum_bin())
        .args(["eval", "--mode", mode, "--limit", &n.to_string(), "--max-tokens", "150", "--tasks"])
        .arg(repo_root().join("evals/tasks.jsonl"))
        .arg("--out")
        .arg(out.path())
        .arg("--model")
        .arg(format!("{model}={}", qwen.display()))
        .args(extra)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    (run, out)
}

fn results(out: &tempfile::TempDir) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap()).unwrap()
}

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn eval_single_runs_and_reports() {
    let _turn = super::engine::serial();
    let (run, out) = eval_first(2, "single", "coder", &[]);
    let single = &results(&out)["single"];
    assert_eq!(single["summary"]["tasks"], 2);
    assert_eq!(single["results"].as_array().unwrap().len(), 2);
    assert!(single["results"][0]["tokens"].as_u64().unwrap() > 0);
    assert!(single["results"][0]["stages"]["code"].as_f64().unwrap() > 0.0);
    let table = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(table.contains("| single | 2 |"), "{table}");
    assert!(String::from_utf8_lossy(&run.stdout).contains("pass rate"));
    assert!(is_png(&out.path().join("chart.png")), "a PNG bar chart");

    // --report redraws both from results.json alone, with no model and no tasks.
    std::fs::remove_file(out.path().join("summary.md")).unwrap();
    std::fs::remove_file(out.path().join("chart.png")).unwrap();
    let redraw = Command::new(quorum_bin()).args(["eval", "--report", "--out"]).arg(out.path()).output().unwrap();
    assert!(redraw.status.success(), "{}", String::from_utf8_lossy(&redraw.stderr));
    assert_eq!(std::fs::read_to_string(out.path().join("summary.md")).unwrap(), table);
    assert!(is_png(&out.path().join("chart.png")));
    let none = Command::new(quorum_bin())
        .args(["eval", "--report", "--out"])
        .arg(out.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("run some modes first"));
}

#[test]
fn eval_runs_the_repository_set_in_single_and_plan_modes_and_reports() {
    let _turn = super::engine::serial();
    let qwen = repo_root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(quorum_bin())
        .args(["eval", "--mode", "single,plan", "--only", "inflection/4", "--max-tokens", "100", "--repos"])
        .arg(repo_root().join("evals/repos/tasks.jsonl"))
        .arg("--out")
        .arg(out.path())
        .arg("--model")
        .arg(format!("all={}", qwen.display()))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let all = results(&out);
    for mode in ["single", "plan"] {
        let results = all[mode]["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{mode}: {results:?}");
        let r = &results[0];
        assert_eq!(r["task_id"], "inflection/4");
        assert!(r["passed"].is_boolean() && r["seconds"].as_f64().unwrap() > 0.0, "{r}");
        // Recall and precision of the files shown (single) or planned (plan) against the
        // reference change's, which touches inflection/__init__.py alone.
        let (recall, precision) = (r["files"]["recall"].as_f64().unwrap(), r["files"]["precision"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&recall) && (0.0..=1.0).contains(&precision), "{r}");
        assert!(r["passed"] == true || !r["error"].as_str().unwrap_or_default().is_empty(), "a failure says why: {r}");
    }
    assert!(all["single"]["results"][0]["stages"]["code"].as_f64().unwrap() > 0.0);
    assert_eq!(all["single"]["results"][0]["files"]["recall"], 1.0, "the search for the task's words finds the file");
    let table = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(table.contains("| single | 1 |") && table.contains("| plan | 1 |"), "{table}");
    assert!(is_png(&out.path().join("chart.png")));
}

#[test]
fn eval_vote_samples_candidates_votes_and_reports_the_oracle() {
    let _turn = super::engine::serial();
    let (_run, out) = eval_first(2, "vote", "all", &[]);
    let vote = &results(&out)["vote"];
    assert_eq!(vote["summary"]["mode"], "vote");
    assert!(vote["summary"]["oracle_rate"].is_number());
    for r in vote["results"].as_array().unwrap() {
        assert!(r["oracle"].is_boolean());
        // A winner that passes implies the oracle passes.
        assert!(r["passed"] == false || r["oracle"] == true, "{r}");
        assert!(r["tokens"].as_u64().unwrap() > 0, "{r}");
        assert!(["code", "examples", "vote"].iter().all(|s| r["stages"][s].is_number()), "{r}");
    }
    let table = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(table.contains("| oracle |") && table.contains("| vote | 2 |"), "{table}");
}

#[test]
fn eval_pipeline_runs_every_stage_on_the_visible_examples_only() {
    let _turn = super::engine::serial();
    let options = r#"{"candidates": 2, "max_candidates": 2, "max_rounds": 1, "replans": 0, "max_votes": 3}"#;
    let (_run, out) = eval_first(1, "pipeline", "all", &["--options", options]);
    let all = results(&out);
    let r = &all["pipeline"]["results"][0];
    assert!(r["oracle"].is_boolean() && r["tokens"].as_u64().unwrap() > 0, "{r}");
    for stage in ["plan", "code", "output"] {
        assert!(r["stages"][stage].is_number(), "{stage} timed: {r}");
    }
    // The task records stay in the output directory for `quorum tasks`.
    let state = out.path().join("tasks.redb");
    let shown = Command::new(quorum_bin()).args(["tasks", "list", "--json", "--state"]).arg(&state).output().unwrap();
    let listed: Value = serde_json::from_slice(&shown.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&shown.stderr)));
    let id = listed["tasks"][0]["id"].as_str().unwrap().to_string();
    let shown =
        Command::new(quorum_bin()).args(["tasks", "show", "--json", &id, "--state"]).arg(&state).output().unwrap();
    let task: Value = serde_json::from_slice(&shown.stdout).unwrap();
    // The planner saw the stub (and maybe the examples test), never the hidden check.
    let files = task["outputs"]["plan"]["context"]["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(
        paths.contains(&"solution.py") && paths.iter().all(|p| ["solution.py", "test_solution.py"].contains(p)),
        "{paths:?}"
    );
    assert!(
        files.iter().all(|f| !f["content"].as_str().unwrap().contains("def check(")),
        "the hidden test stays hidden"
    );
    assert!(task["attempts"].as_array().unwrap().len() >= 2, "candidates were made");
    assert!(is_png(&out.path().join("chart.png")));
}

/// The repository set through quorum's side of its harness: 30 tasks over 6 projects, a
/// workspace without its hidden tests, verdicts that fail the untouched tree, pass a fix
/// and fail a fix that breaks another test (real project, real pytest).
#[tokio::test]
async fn the_repository_set_prepares_workspaces_and_judges_changes() {
    use quorum::eval::repos::{recall_precision, Harness};
    let harness = Harness::beside(&repo_root().join("evals/repos/tasks.jsonl")).unwrap();
    let tasks = harness.load().unwrap();
    assert!(tasks.len() >= 30, "{}", tasks.len());
    let projects: std::collections::BTreeSet<&str> = tasks.iter().map(|t| t.project.as_str()).collect();
    assert!(projects.len() >= 6, "{projects:?}");
    for kind in ["bug", "feature", "multi-file"] {
        assert!(tasks.iter().any(|t| t.kind == kind), "no {kind} task");
    }

    let task = tasks.iter().find(|t| t.task_id == "inflection/4").unwrap();
    let prepared = harness.prepare(task).await.unwrap();
    let source = prepared.root.join("inflection/__init__.py");
    let tests = std::fs::read_to_string(prepared.root.join("test_inflection.py")).unwrap();
    assert!(!tests.contains("def test_pluralize_empty_string"), "the hidden test is out of the workspace");
    assert!(tests.contains("def test_pluralize_plurals"), "the other tests stay");

    let untouched = harness.verdict(task, &prepared.root).await.unwrap();
    assert!(!untouched.passed && !untouched.hidden_failed.is_empty(), "{untouched:?}");

    let buggy = std::fs::read_to_string(&source).unwrap();
    let fixed =
        buggy.replacen("    if word.lower() in UNCOUNTABLES:", "    if not word or word.lower() in UNCOUNTABLES:", 1);
    assert_ne!(fixed, buggy);
    std::fs::write(&source, &fixed).unwrap();
    let verdict = harness.verdict(task, &prepared.root).await.unwrap();
    assert!(verdict.passed, "{verdict:?}");

    // Fixed, but another function broken: the verdict names what broke.
    std::fs::write(&source, fixed.replacen("return \"{}{}\".format(number, ordinal(number))", "return str(number)", 1))
        .unwrap();
    let broke = harness.verdict(task, &prepared.root).await.unwrap();
    assert!(!broke.passed && broke.broken.iter().any(|t| t.contains("test_ordinalize")), "{broke:?}");

    assert_eq!(recall_precision(&["a.py".into(), "b.py".into()], &["a.py".into()]), (1.0, 0.5));
}
