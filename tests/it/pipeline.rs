//! The pipeline's stage logic with scripted models on a real fixture repository (real
//! git worktrees, real pytest): red flags, merged duplicates, test evidence, voting, the
//! review loop, re-planning, events in order, the task record, and resuming after a crash.
//! `pipeline_real.rs` runs the same on the real small models.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use quorum::models::Role;
use quorum::pipeline::{Ask, Models, Pipeline, PipelineError, PipelineOptions, Sample, ScriptedModels, Setup};
use quorum::state::{EmbeddedStore, Stage, TaskStatus, TaskStore};
use quorum::tools::{Tools, Workspace, Workspaces};
use serde_json::{json, Value};

pub const CALC_PY: &str = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n";
pub const TEST_CALC: &str = "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n";
pub const TASK: &str = "Fix add() in calc.py: it subtracts instead of adding, so test_add fails.";

/// A small Python project whose `test_add` fails, committed with git.
pub fn calc_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("calc");
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join("calc.py"), CALC_PY).unwrap();
    std::fs::write(root.join("tests/test_calc.py"), TEST_CALC).unwrap();
    std::fs::write(root.join("conftest.py"), "").unwrap();
    std::fs::write(root.join(".gitignore"), "__pycache__/\n.pytest_cache/\n").unwrap();
    for args in [&["init", "-q"][..], &["add", "."], &["commit", "-qm", "calc"]] {
        git(&root, args);
    }
    (dir, root)
}

fn git(root: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A README beside calc.py, committed: a second file a plan's step may change.
fn commit_readme(root: &Path) {
    std::fs::write(root.join("README.md"), "# calc\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "readme"]);
}

fn block(search: &str, replace: &str) -> String {
    format!("FILE: calc.py\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n")
}

/// calc.py is short enough to be written whole; these tests script edit blocks.
fn edit_blocks() -> PipelineOptions {
    PipelineOptions { whole_file_lines: 0, ..scripted() }
}

/// The scripted batches are all the candidates there are: no extra batch while undecided.
fn scripted() -> PipelineOptions {
    PipelineOptions { max_candidates: 0, ..Default::default() }
}

/// What the reviewer's two kinds of ask contain: a review, and the behaviour probes.
const REVIEW: &str = "You review a code change";
const PROBES: &str = "careful tester";

/// A pipeline over `root` with its own state file, and one task of [`TASK`] run to its end.
async fn run_task(
    root: &Path,
    models: Arc<dyn Models>,
    options: PipelineOptions,
) -> (tempfile::TempDir, Pipeline, quorum::state::Task, quorum::state::Task) {
    let state = tempfile::tempdir().unwrap();
    let p = pipeline(root, models, &state.path().join("s.redb"), options).await;
    let task = p.create(TASK, false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();
    (state, p, task, done)
}

const PLAN: &str = r#"{"subtasks": [{"description": "Make add() in calc.py return the sum", "files": ["calc.py"]}], "verify": "pytest"}"#;

async fn pipeline(root: &Path, models: Arc<dyn Models>, state: &Path, defaults: PipelineOptions) -> Pipeline {
    // An aborted run may still hold the file for a moment: wait for it, however long that takes here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let store = loop {
        match EmbeddedStore::open(state.to_path_buf()).await {
            Ok(store) => break store,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let tasks = TaskStore::new(Arc::new(store));
    let tools = Tools::new(Workspace::new(root).unwrap());
    Setup { options: defaults, ..Default::default() }.pipeline(models, tools, tasks)
}

fn kinds(events: &[quorum::state::TaskEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind.starts_with("stage_started"))
        .map(|e| e.stage.map(|s| s.to_string()).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn candidates_are_flagged_merged_voted_reviewed_and_revised() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    let fix = block("    return a - b\n", "    return a + b\n");
    models.script(
        Role::Coder,
        [
            fix.clone(),
            // The same fix again: merged with the first.
            fix.clone(),
            // Another correct fix: a second choice.
            block("    return a - b\n", "    return b + a\n"),
            // Passes nothing: its tests fail while others pass, so it cannot stand.
            block("    return a - b\n", "    return a * b\n"),
            "I would change the minus to a plus.".to_string(),
        ],
    );
    models.script(Role::Voter, ["A", "B", "A", "A"]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": false, "problems": ["add() needs a docstring"]}"#]);
    let documented = block(
        "def add(a, b):\n    return a - b\n",
        "def add(a, b):\n    \"\"\"The sum of a and b.\"\"\"\n    return a + b\n",
    );
    models.script(
        Role::Coder,
        [
            documented.clone(),
            documented.clone(),
            documented.clone(),
            block("    return a + b\n", "    return 0\n"),
            format!("{documented}<<LIMIT>>"),
        ],
    );
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);

    let state = tempfile::tempdir().unwrap();
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), edit_blocks()).await;
    let task = p.create(TASK, false, Value::Null).await.unwrap();
    let mut live = Box::pin(p.tasks().follow(task.id.clone(), 0));
    let done = p.run(&task.id).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(e) = live.next().await {
        streamed.push(e);
    }

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert_eq!(streamed, events, "the live stream equals the saved log");
    assert_eq!(kinds(&events), ["preprocess", "plan", "code", "vote", "review", "code", "vote", "review", "output"]);
    assert_eq!(events.last().unwrap().kind, "finished");

    let candidates: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data).collect();
    assert_eq!(candidates.len(), 10);
    assert_eq!(candidates[0]["tests"]["success"], true);
    assert_eq!(candidates[3]["tests"]["success"], false);
    assert!(candidates[4]["red_flag"].as_str().unwrap().starts_with("malformed"));
    assert!(candidates[8]["red_flag"].as_str().unwrap().contains("does not apply"), "{}", candidates[8]);
    assert!(candidates[9]["red_flag"].as_str().unwrap().contains("token limit"));
    let temperatures: Vec<f64> = candidates[..5].iter().map(|c| c["temperature"].as_f64().unwrap()).collect();
    assert!((temperatures[0] - 0.3).abs() < 1e-6 && (temperatures[4] - 0.7).abs() < 1e-6, "{temperatures:?}");

    let tallies: Vec<&Value> = events.iter().filter(|e| e.kind == "tally").map(|e| &e.data).collect();
    assert_eq!(tallies[0]["winner"], "A");
    assert_eq!(tallies[0]["decided_by"], "ahead_by_k");
    assert_eq!(
        tallies[0]["choices"],
        json!([{"letter": "A", "candidates": [0, 1], "votes": 3}, {"letter": "B", "candidates": [2], "votes": 1}])
    );
    assert_eq!(tallies[1]["decided_by"], "uncontested", "three identical candidates merge into one choice");
    assert_eq!(events.iter().filter(|e| e.kind == "vote").count(), 4);

    // The coder's second round saw the reviewer's problem and the rejected change.
    {
        let asked = models.asked.lock().unwrap();
        let coder: Vec<&Ask> = asked.iter().filter(|(r, _)| *r == Role::Coder).map(|(_, a)| a).collect();
        assert_eq!(coder[0].temperatures.len(), 5, "five candidates from one prompt");
        assert!(coder[1].messages[1].content.contains("add() needs a docstring"));
        assert!(coder[1].messages[1].content.contains("+    return a + b"));
        let planner = &asked.iter().find(|(r, _)| *r == Role::Planner).unwrap().1;
        assert!(
            planner.messages[1].content.contains("FILE: calc.py")
                && planner.messages[1].content.contains("return a - b")
        );
        assert!(planner.grammar.is_some(), "the plan is grammar-constrained");
        let voter = &asked.iter().find(|(r, _)| *r == Role::Voter).unwrap().1;
        assert_eq!(voter.grammar.as_deref(), Some(r#"root ::= "A" | "B""#));
    }

    let record = p.tasks().get(&task.id).await.unwrap().unwrap();
    for stage in Stage::ALL {
        assert!(record.outputs.contains_key(&stage), "{stage} output saved");
    }
    assert_eq!(record.attempts.len(), 10);
    assert_eq!(record.reviews.iter().map(|r| r.approved).collect::<Vec<_>>(), [false, true]);
    let output = &record.outputs[&Stage::Output];
    let diff = output["diff"].as_str().unwrap();
    assert!(diff.contains("+    \"\"\"The sum of a and b.\"\"\"") && diff.contains("+    return a + b"), "{diff}");
    assert_eq!(output["applied"], false);
    assert_eq!(std::fs::read_to_string(root.join("calc.py")).unwrap(), CALC_PY, "nothing written unless asked");
    let worktrees = Command::new("git").args(["worktree", "list"]).current_dir(&root).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&worktrees.stdout).lines().count(), 1, "scratch worktrees are removed");
}

#[tokio::test]
async fn failing_tests_reach_the_coder_and_whole_functions_are_rewritten() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a * b\n"); 2]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": false, "problems": ["add() multiplies"]}"#]);
    // The whole-definition form: the SEARCH quotes the header only.
    models.script(
        Role::Coder,
        vec![block("def add(a, b):\n", "def add(a, b):\n    total = a + b\n    return total\n"); 2],
    );
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let state = tempfile::tempdir().unwrap();
    let p = pipeline(
        &root,
        models.clone(),
        &state.path().join("s.redb"),
        PipelineOptions { candidates: 2, ..edit_blocks() },
    )
    .await;
    let task = p.create(TASK, false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let diff = done.outputs[&Stage::Output]["diff"].as_str().unwrap();
    assert!(
        diff.contains("+    total = a + b")
            && diff.contains("-    return a - b")
            && !diff.contains("+    return a - b"),
        "{diff}"
    );
    let asked = models.asked.lock().unwrap();
    let role = |role: Role, needle: &'static str| {
        asked
            .iter()
            .filter(move |(r, a)| *r == role && a.messages[0].content.contains(needle))
            .map(|(_, a)| a.messages[1].content.clone())
            .collect::<Vec<_>>()
    };
    let (coder, reviewer) = (role(Role::Coder, ""), role(Role::Reviewer, REVIEW));
    assert!(!coder[0].contains("Its tests failed"));
    assert!(coder[1].contains("Its tests failed") && coder[1].contains("6 == 5"), "{}", coder[1]);
    // The reviewer reads the file as it ends up, not only the diff.
    assert!(
        reviewer[0].contains("The changed files after the change")
            && reviewer[0].contains("def add(a, b):\n    return a * b"),
        "{}",
        reviewer[0]
    );
}

#[tokio::test]
async fn candidates_that_behave_alike_outvote_the_rest_without_a_voter() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.answer(
        Role::Reviewer,
        PROBES,
        [r#"{"calls": ["add(0, 0)", "add(-1, 1)", "add(-1, 1)", "not a call", "add(2.5, 1)"]}"#],
    );
    // All three pass test_add; the third differs on negative numbers. No voter is scripted:
    // asking one would fail the task.
    models.script(
        Role::Coder,
        [
            block("    return a - b\n", "    return a + b\n"),
            block("    return a - b\n", "    return b + a\n"),
            block("    return a - b\n", "    return abs(a) + abs(b)\n"),
        ],
    );
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let (_state, p, task, done) =
        run_task(&root, models.clone(), PipelineOptions { candidates: 3, probes: 4, ..edit_blocks() }).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let probes = events.iter().find(|e| e.kind == "probes").expect("a probes event");
    assert_eq!(
        probes.data,
        json!({"modules": ["calc"], "calls": ["add(0, 0)", "add(-1, 1)", "add(2.5, 1)"], "error": null})
    );
    let behaviour: Vec<&Value> =
        events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data["behaviour"]).collect();
    assert_eq!(behaviour, [&json!(["0", "0", "3.5"]), &json!(["0", "0", "3.5"]), &json!(["0", "2", "3.5"])]);
    let tally = events.iter().find(|e| e.kind == "tally").unwrap();
    assert_eq!((&tally.data["decided_by"], &tally.data["groups"]), (&json!("agreement"), &json!([[0, 1], [2]])));
    let diff = done.outputs[&Stage::Output]["diff"].as_str().unwrap();
    assert!(diff.contains("+    return a + b") && !diff.contains("quorum"), "{diff}");
    let status = Command::new("git").args(["status", "--porcelain"]).current_dir(&root).output().unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).is_empty(), "the workspace is untouched");
}

#[tokio::test]
async fn a_candidate_that_crashes_on_a_probe_cannot_stand_against_one_that_does_not() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": ["add(-1, 1)", "add(2, 0)"]}"#]);
    // All three pass test_add. The first two agree, and crash on a number their table
    // lacks; the third alone returns a value. No voter is scripted.
    let table = block("    return a - b\n", "    table = {2: 2, 3: 3}\n    return table[a] + b\n");
    models.script(Role::Coder, [table.clone(), table, block("    return a - b\n", "    return a + b\n")]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let (_state, p, task, done) =
        run_task(&root, models.clone(), PipelineOptions { candidates: 3, probes: 2, ..edit_blocks() }).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let behaviour: Vec<&Value> =
        events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data["behaviour"]).collect();
    assert_eq!(
        behaviour,
        [&json!(["raises KeyError (crash)", "2"]), &json!(["raises KeyError (crash)", "2"]), &json!(["0", "2"])]
    );
    let tally = events.iter().find(|e| e.kind == "tally").unwrap();
    assert_eq!(
        (&tally.data["candidate"], &tally.data["decided_by"], &tally.data["faults"]),
        (&json!(2), &json!("uncontested"), &json!([1, 1, 0]))
    );
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
}

#[tokio::test]
async fn a_candidate_that_still_gives_what_the_task_reports_or_nothing_is_red_flagged() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    // The task's own call comes first; the reviewer's after it.
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": ["add(0, 0)"]}"#]);
    models.script(
        Role::Coder,
        [
            block("    return a - b\n", "    return a - b  # the sum\n"),
            block("    return a - b\n", "    return None if a == 2 else a + b\n"),
            block("    return a - b\n", "    return a + b\n"),
        ],
    );
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let state = tempfile::tempdir().unwrap();
    let options = PipelineOptions { candidates: 3, probes: 2, ..edit_blocks() };
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), options).await;
    let task = p.create("add(2, 3) returns -1 in calc.py, but should return 5.", false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let probes = events.iter().find(|e| e.kind == "probes").unwrap();
    assert_eq!(probes.data["calls"], json!(["add(2, 3)", "add(0, 0)"]));
    let flags: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data["red_flag"]).collect();
    assert_eq!(
        flags,
        [
            &json!("add(2, 3), the task's own example, still returns -1, as the task reports of the bug"),
            &json!("add(2, 3), the task's own example, returns None where the task says it should give 5"),
            &Value::Null
        ]
    );
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
}

#[tokio::test]
async fn while_no_candidate_passes_another_batch_is_sampled_hotter() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(
        Role::Coder,
        [block("    return a - b\n", "    return a * b\n"), block("    return a - b\n", "    return b - a\n")],
    );
    models.script(
        Role::Coder,
        [block("    return a - b\n", "    return a + b\n"), block("    return a - b\n", "    return a // b\n")],
    );
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let (_state, p, task, done) =
        run_task(&root, models.clone(), PipelineOptions { candidates: 2, max_candidates: 4, ..edit_blocks() }).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let more: Vec<&Value> = events.iter().filter(|e| e.kind == "more_candidates").map(|e| &e.data).collect();
    assert_eq!(more, [&json!({"round": 1, "subtask": 0, "after": 2, "adding": 2})], "one more batch, then the cap");
    let indexes: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data["index"]).collect();
    assert_eq!(indexes, [&json!(0), &json!(1), &json!(2), &json!(3)]);
    let tally = events.iter().find(|e| e.kind == "tally").unwrap();
    assert_eq!((&tally.data["candidate"], &tally.data["decided_by"]), (&json!(2), &json!("uncontested")));
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
    let asked = models.asked.lock().unwrap();
    let coder: Vec<&Ask> = asked.iter().filter(|(r, _)| *r == Role::Coder).map(|(_, a)| a).collect();
    assert_eq!(coder.len(), 2);
    assert_eq!(coder[0].messages, coder[1].messages, "the same prompt, so its prefill is cached");
    assert!(
        coder[1].temperatures.iter().zip(&coder[0].temperatures).all(|(hot, cool)| hot > cool),
        "{:?}",
        coder[1].temperatures
    );
}

#[tokio::test]
async fn candidates_that_agree_and_pass_need_no_second_batch() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 3]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let (_state, p, task, done) =
        run_task(&root, models.clone(), PipelineOptions { candidates: 3, max_candidates: 10, ..edit_blocks() }).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "more_candidates"), "three alike passing candidates lead by k = 2");
    assert_eq!(events.iter().filter(|e| e.kind == "candidate").count(), 3);
    assert_eq!(models.asked.lock().unwrap().iter().filter(|(r, _)| *r == Role::Coder).count(), 1);
}

#[tokio::test]
async fn short_files_are_written_whole_and_a_retry_sees_the_rejected_version() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    let whole = |calc: &str| format!("Here it is.\nFILE: calc.py\n```python\n{calc}```\n");
    let product = CALC_PY.replace("a - b", "a * b");
    // The last one writes the tests, which this task may not touch.
    let rigged = "FILE: tests/test_calc.py\n```python\ndef test_add():\n    pass\n```\n".to_string();
    models.script(Role::Coder, [whole(&product), whole(CALC_PY), "return a + b".to_string(), rigged]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": false, "problems": ["add() multiplies"]}"#]);
    let sum = CALC_PY.replace("a - b", "a + b");
    models.script(Role::Coder, [whole(&sum), whole(&sum), format!("{}<<LIMIT>>", whole(&sum)), whole(&sum)]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let state = tempfile::tempdir().unwrap();
    let options = PipelineOptions { candidates: 4, ..scripted() };
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), options).await;
    let task = p.create(TASK, false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let diff = done.outputs[&Stage::Output]["diff"].as_str().unwrap();
    assert!(diff.contains("-    return a - b\n+    return a + b") && !diff.contains("mul(a, b):\n-"), "{diff}");
    let flags: Vec<Option<String>> = done.attempts.iter().map(|a| a.red_flag.clone()).collect();
    assert_eq!(flags[0], None);
    assert_eq!(flags[1].as_deref(), Some("changes nothing"));
    assert!(flags[2].as_deref().unwrap().starts_with("malformed"), "{flags:?}");
    assert!(flags[3].as_deref().unwrap().contains("not among the files this step may change"), "{flags:?}");
    assert!(flags[6].as_deref().unwrap().contains("token limit"), "{flags:?}");

    let asked = models.asked.lock().unwrap();
    let coder: Vec<&Ask> = asked.iter().filter(|(r, _)| *r == Role::Coder).map(|(_, a)| a).collect();
    assert!(coder[0].messages[0].content.contains("whole file"), "{}", coder[0].messages[0].content);
    let grammar = coder[0].grammar.as_deref().unwrap();
    assert!(grammar.contains(r#""calc.py""#) && grammar.contains("```") && !grammar.contains("test_calc"), "{grammar}");
    // Writing calc.py again costs its length on top of the change.
    assert!(coder[0].max_tokens > 512, "{}", coder[0].max_tokens);
    assert!((coder[1].temperatures[0] - 0.6).abs() < 1e-5, "a retry samples hotter: {:?}", coder[1].temperatures);
    let retry = &coder[1].messages[1].content;
    assert!(
        retry.contains("The rejected version was:\nFILE: calc.py\n```\ndef add(a, b):\n    return a * b"),
        "{retry}"
    );
    assert!(retry.contains("Its tests failed"), "{retry}");
}

#[tokio::test]
async fn apply_writes_the_approved_diff() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 3]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let state = tempfile::tempdir().unwrap();
    let options = PipelineOptions { candidates: 3, ..edit_blocks() };
    let p = pipeline(&root, models, &state.path().join("s.redb"), options).await;
    let task = p.create(TASK, true, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();
    assert_eq!(done.outputs[&Stage::Output]["applied"], true);
    assert_eq!(std::fs::read_to_string(root.join("calc.py")).unwrap(), CALC_PY.replace("a - b", "a + b"));
}

#[tokio::test]
async fn when_nothing_survives_the_planner_tries_again_then_the_task_fails() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN, PLAN]);
    models.script(Role::Coder, vec!["no edits here".to_string(); 4]);
    let state = tempfile::tempdir().unwrap();
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), edit_blocks()).await;
    let options = json!({"candidates": 2, "max_rounds": 1, "replans": 1});
    let task = p.create(TASK, false, options).await.unwrap();
    let err = p.run(&task.id).await;
    assert!(err.is_ok(), "a failed task is a result, not an error: {err:?}");
    let record = p.tasks().get(&task.id).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(record.error.as_deref().unwrap().contains("no candidate survived the red flags"), "{:?}", record.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        ["preprocess", "plan", "code", "vote", "review", "plan", "code", "vote", "review", "output"]
    );
    let asked = models.asked.lock().unwrap();
    let plans: Vec<&Ask> = asked.iter().filter(|(r, _)| *r == Role::Planner).map(|(_, a)| a).collect();
    assert!(
        plans[1].messages[1].content.contains("Earlier attempts were rejected"),
        "the re-plan knows what went wrong"
    );
    let review = |(role, ask): &&(Role, Ask)| *role == Role::Reviewer && ask.messages[0].content.contains(REVIEW);
    assert!(!asked.iter().any(|a| a.0 == Role::Voter || review(&a)), "no vote or review without candidates");
}

#[tokio::test]
async fn bad_options_are_refused_before_a_task_is_made() {
    let (_dir, root) = calc_repo();
    let state = tempfile::tempdir().unwrap();
    let p = pipeline(&root, Arc::new(ScriptedModels::default()), &state.path().join("s.redb"), edit_blocks()).await;
    for bad in [json!({"k": 0}), json!({"candidats": 5}), json!({"max_temperature": 0.1}), json!([1])] {
        assert!(matches!(p.create(TASK, false, bad.clone()).await, Err(PipelineError::Invalid(_))), "{bad}");
    }
    assert!(p.tasks().list(None, 10).await.unwrap().is_empty());
}

/// Answers the planner, then never answers the coder: a process that dies mid-stage.
struct Stalls(ScriptedModels);

#[async_trait]
impl Models for Stalls {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        if role == Role::Coder {
            std::future::pending::<()>().await;
        }
        self.0.ask(role, ask).await
    }
    fn count_tokens(&self, role: Role, text: &str) -> usize {
        self.0.count_tokens(role, text)
    }
    fn parallel(&self, role: Role) -> u32 {
        self.0.parallel(role)
    }
}

#[tokio::test]
async fn an_interrupted_task_resumes_after_its_last_completed_stage() {
    let (_dir, root) = calc_repo();
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("s.redb");
    let id = {
        let first = Stalls(ScriptedModels::default());
        first.0.script(Role::Planner, [PLAN]);
        let p = pipeline(&root, Arc::new(first), &path, edit_blocks()).await;
        let task = p.create(TASK, false, json!({"candidates": 3})).await.unwrap();
        let mut events = Box::pin(p.tasks().follow(task.id.clone(), 0));
        let run = p.start(&task.id).await.unwrap();
        assert!(matches!(p.start(&task.id).await, Err(PipelineError::Busy(_))), "one runner per task");
        while let Some(e) = events.next().await {
            if e.kind == "stage_started" && e.stage == Some(Stage::Code) {
                break;
            }
        }
        // The process dies here.
        run.abort();
        let _ = run.await;
        task.id
    };

    let second = Arc::new(ScriptedModels::default());
    second.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 3]);
    second.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let p = pipeline(&root, second.clone(), &path, edit_blocks()).await;
    assert_eq!(p.tasks().recover().await.unwrap(), std::slice::from_ref(&id));
    let interrupted = p.tasks().get(&id).await.unwrap().unwrap();
    assert_eq!(interrupted.status, TaskStatus::Interrupted);
    assert_eq!(interrupted.last_completed_stage, Some(Stage::Plan));

    let done = p.run(&id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
    assert!(!second.asked.lock().unwrap().iter().any(|(r, _)| *r == Role::Planner), "the saved plan was reused");
    let events = p.tasks().events(&id, 0).await.unwrap();
    let resumed = events.iter().position(|e| e.kind == "resumed").expect("a resumed event");
    assert_eq!(events[resumed].data["after"], "plan");
    assert_eq!(kinds(&events[resumed..]), ["code", "vote", "review", "output"]);
    assert!(matches!(p.run(&id).await, Err(PipelineError::Finished { .. })));
}

#[tokio::test]
async fn a_later_step_that_changes_nothing_is_passed_and_tests_stay_out_of_reach() {
    let (_dir, root) = calc_repo();
    commit_readme(&root);
    let models = Arc::new(ScriptedModels::default());
    let plan = r#"{"subtasks": [
        {"description": "Make add() in calc.py return the sum", "files": ["calc.py"]},
        {"description": "Check add() against the tests", "files": ["calc.py", "README.md", "tests/test_calc.py"]}], "verify": "pytest"}"#;
    models.script(Role::Planner, [plan]);
    let fix = block("    return a - b\n", "    return a + b\n");
    models.script(Role::Coder, vec![fix; 5]);
    models.script(Role::Coder, vec![block("    return a + b\n", "    return a + b\n"); 5]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);

    let state = tempfile::tempdir().unwrap();
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), edit_blocks()).await;
    // The task says nothing of tests, so the candidates may not edit them.
    let task = p.create("Fix add() in calc.py: it subtracts instead of adding.", false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert_eq!(kinds(&events), ["preprocess", "plan", "code", "vote", "code", "vote", "review", "output"]);
    let tallies: Vec<&Value> = events.iter().filter(|e| e.kind == "tally").map(|e| &e.data).collect();
    assert_eq!(tallies[1]["skipped"], "no candidate changed anything", "{}", tallies[1]);
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
    let asked = models.asked.lock().unwrap();
    let second = &asked.iter().filter(|(r, _)| *r == Role::Coder).nth(1).unwrap().1;
    let grammar = second.grammar.as_deref().unwrap();
    assert!(grammar.contains("calc.py") && !grammar.contains("test_calc.py"), "{grammar}");
}

#[tokio::test]
async fn a_task_saved_before_the_run_record_resumes_after_its_plan_or_is_refused_with_a_reason() {
    let (_dir, root) = calc_repo();
    let state = tempfile::tempdir().unwrap();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 3]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), edit_blocks()).await;
    // A record as the version before the run record saved it, interrupted in the code stage.
    let saved: quorum::state::Task =
        serde_json::from_str(include_str!("fixtures/task-before-run-record.json")).unwrap();
    assert!(saved.run.is_none());
    let mut after_vote = saved.clone();
    after_vote.id = saved.id.replace("0019", "0020");
    after_vote.last_completed_stage = Some(Stage::Vote);
    for mut task in [saved.clone(), after_vote.clone()] {
        p.tasks().save(&mut task).await.unwrap();
    }
    let mut recovered = p.tasks().recover().await.unwrap();
    recovered.sort();
    assert_eq!(recovered, [saved.id.clone(), after_vote.id.clone()]);

    let done = p.run(&saved.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
    assert!(!models.asked.lock().unwrap().iter().any(|(r, _)| *r == Role::Planner), "the saved plan was reused");
    assert_eq!(done.run.as_ref().unwrap()["version"], 1, "saved in the current format from then on");
    assert_eq!(done.attempts.len(), 3);

    // Past its plan, the old record cannot say which round it was in: refused, saying why.
    let refused = p.run(&after_vote.id).await.unwrap_err().to_string();
    assert!(refused.contains("saved by an older quorum after its vote stage"), "{refused}");
    let record = p.tasks().get(&after_vote.id).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.outputs.len(), 2, "its outputs stay readable");
}

#[tokio::test]
async fn candidates_run_the_tests_of_the_change_and_failures_already_there_are_excused() {
    let (_dir, root) = calc_repo();
    // A failure the task did not cause and no candidate can fix, in a test of add(); and a
    // test of something else, which the candidates need not run.
    std::fs::write(
        root.join("tests/test_env.py"),
        "from calc import add\n\n\ndef test_needs_network():\n    assert add is None, 'no network here'\n",
    )
    .unwrap();
    std::fs::write(root.join("tests/test_other.py"), "def test_other():\n    assert True\n").unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "more tests"]);
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    let fix = block("    return a - b\n", "    return a + b\n");
    let wrong = block("    return a - b\n", "    return a * b\n");
    models.script(Role::Coder, [fix.clone(), fix.clone(), wrong, fix.clone(), fix]);
    models.script(Role::Voter, ["A", "A", "A"]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let (_state, p, task, done) = run_task(&root, models.clone(), edit_blocks()).await;
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);

    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let baseline = events.iter().find(|e| e.kind == "baseline").expect("a baseline run");
    assert_eq!(baseline.data["tests"], "pytest on 2 test(s) and file(s)", "{}", baseline.data);
    let failing: Vec<&str> = baseline.data["failing"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(failing, ["tests/test_calc.py::test_add", "tests/test_env.py::test_needs_network"]);
    assert!(baseline.data["timeout_secs"].as_u64().unwrap() >= 30);
    let candidates: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data).collect();
    // Only the tests that mention add() run (not test_mul, not test_other.py): test_add
    // passes, test_needs_network fails.
    assert_eq!(candidates[0]["tests"]["passed"], 1, "{}", candidates[0]);
    assert_eq!(candidates[0]["tests"]["failed"], 1);
    // Failing only where the workspace failed before, and nothing fixed it: excused.
    assert_eq!(candidates[0]["tests"]["success"], true);
    // test_add failed before too, but the other candidates fixed it: it counts.
    assert_eq!(candidates[2]["tests"]["success"], false);
}

#[tokio::test]
async fn candidates_tests_run_at_the_same_time() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("one core: candidates' tests run one at a time by design");
        return;
    }
    let (dir, root) = calc_repo();
    // A test that passes only while another tree's run of it is under way: each run of a
    // fixed tree leaves its directory in `meet` and waits up to a minute for a second one.
    let meet = dir.path().join("meet");
    std::fs::create_dir(&meet).unwrap();
    let test = format!(
        "import os, pathlib, time\nfrom calc import add\n\nMEET = pathlib.Path({:?})\n\n\n\
         def test_add_meets_another_run():\n    assert add(2, 3) == 5\n    \
         (MEET / str(os.getpid())).write_text(os.getcwd())\n    deadline = time.time() + 60\n    \
         while len(list(MEET.iterdir())) < 2 and time.time() < deadline:\n        time.sleep(0.05)\n    \
         assert len(list(MEET.iterdir())) >= 2, 'no other run at the same time'\n",
        meet.display().to_string()
    );
    std::fs::write(root.join("tests/test_meet.py"), test).unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "a test that meets"]);
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    // Two different fixes: two trees to test (the same change is tested once).
    let (plus, swapped) =
        (block("    return a - b\n", "    return a + b\n"), block("    return a - b\n", "    return b + a\n"));
    models.script(Role::Coder, [plus.clone(), swapped.clone(), plus.clone(), swapped, plus]);
    models.script(Role::Voter, ["A", "A", "A"]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let (_state, p, task, done) = run_task(&root, models.clone(), edit_blocks()).await;
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);

    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let candidates: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data).collect();
    assert_eq!(candidates.len(), 5);
    for candidate in &candidates[..2] {
        assert_eq!(candidate["tests"]["success"], true, "{candidate}");
    }
    let trees: std::collections::BTreeSet<String> =
        std::fs::read_dir(&meet).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert_eq!(trees.len(), 2, "two scratch trees tested at once: {trees:?}");
}

#[tokio::test]
async fn tests_that_cannot_run_before_any_change_are_held_against_no_candidate() {
    let (_dir, root) = calc_repo();
    // Every run stops at the conftest, before any test: as `python3 -m pytest` does
    // where pytest is not installed.
    std::fs::write(root.join("tests/conftest.py"), "raise ImportError('the lab database driver is missing')\n")
        .unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "a conftest that needs the lab"]);
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 5]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let (_state, p, task, done) = run_task(&root, models.clone(), edit_blocks()).await;
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);

    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let baseline = events.iter().find(|e| e.kind == "baseline").expect("a baseline run");
    let error = baseline.data["error"].as_str().unwrap_or_default();
    assert!(error.contains("lab database driver"), "{}", baseline.data);
    let candidates: Vec<&Value> = events.iter().filter(|e| e.kind == "candidate").map(|e| &e.data).collect();
    assert_eq!(candidates.len(), 5);
    // Each candidate's run stopped where the baseline's did: no evidence either way.
    assert!(candidates.iter().all(|c| c["tests"].is_null()), "{candidates:?}");
    let review = models
        .asked
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(r, a)| *r == Role::Reviewer && a.messages.iter().any(|m| m.content.contains(REVIEW)))
        .map(|(_, a)| a.messages.last().unwrap().content.clone())
        .unwrap();
    assert!(!review.contains("Tests FAIL"), "{review}");
}

#[tokio::test]
async fn a_tree_tested_once_is_not_tested_again_and_the_baseline_runs_while_the_coders_answer() {
    let (dir, root) = calc_repo();
    // Each pytest run of the workspace or a scratch worktree of it leaves a line.
    let runs = dir.path().join("runs.log");
    std::fs::write(root.join("conftest.py"), format!("open({:?}, 'a').write('run\\n')\n", runs.to_str().unwrap()))
        .unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "count the runs"]);
    let models = Arc::new(Delayed::coder(tokio::time::Instant::now()));
    models.models.script(Role::Planner, [PLAN]);
    let fix = block("    return a - b\n", "    return a + b\n");
    let wrong = block("    return a - b\n", "    return a * b\n");
    models.models.script(Role::Coder, [fix.clone(), fix.clone(), wrong, fix.clone(), fix]);
    // Round 2 writes another fix: the rejected one again would end the plan unreviewed.
    models.models.script(Role::Coder, vec![block("    return a - b\n", "    return b + a\n"); 5]);
    let reject = r#"{"approved": false, "problems": ["add() needs a docstring"]}"#;
    models.models.answer(Role::Reviewer, REVIEW, [reject, r#"{"approved": true, "problems": []}"#]);
    models.models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let (_state, p, task, done) =
        run_task(&root, models.clone(), PipelineOptions { max_rounds: 2, ..edit_blocks() }).await;
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);

    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let baselines: Vec<&quorum::state::TaskEvent> = events.iter().filter(|e| e.kind == "baseline").collect();
    assert_eq!(baselines.len(), 2, "each round says what its tests did before any change");
    assert_eq!(baselines[0].data["failing"], baselines[1].data["failing"]);
    let passed: Vec<bool> =
        events.iter().filter(|e| e.kind == "candidate").map(|e| e.data["tests"]["success"] == true).collect();
    assert_eq!(passed, [true, true, false, true, true, true, true, true, true, true]);
    // The untouched tree, the two changes round 1 wrote and round 2's. Not again: round
    // 2's baseline, the reviews' baselines and runs of the winners, a change written twice.
    let lines = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(lines, 4, "pytest ran {lines} times");
    // The coders were asked before the untouched tree's tests ended.
    let asked = models.first_asked.lock().unwrap().expect("the coder was asked");
    assert!(asked <= baselines[0].at, "asked at {asked}, baseline logged at {}", baselines[0].at);
}

#[tokio::test]
async fn a_change_rejected_before_is_not_reviewed_again_and_ends_its_plans_rounds() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN, PLAN]);
    // The coder writes the same fix whatever it is told.
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 15]);
    let reject = r#"{"approved": false, "problems": ["add() needs a docstring"]}"#;
    models.answer(Role::Reviewer, REVIEW, [reject, reject, reject]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#, r#"{"calls": []}"#]);
    let options = PipelineOptions { max_rounds: 3, replans: 1, ..edit_blocks() };
    let (_state, p, task, done) = run_task(&root, models.clone(), options).await;
    assert_eq!(done.status, TaskStatus::Failed);
    let error = done.error.as_deref().unwrap();
    assert!(error.contains("the change rejected in round 1 again; add() needs a docstring"), "{error}");
    // Round 2 wrote round 1's change: no round 3 of that plan. The new plan's first round
    // wrote it too: the task ends.
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert_eq!(
        kinds(&events),
        [
            "preprocess",
            "plan",
            "code",
            "vote",
            "review",
            "code",
            "vote",
            "review",
            "plan",
            "code",
            "vote",
            "review",
            "output"
        ]
    );
    let skipped: Vec<bool> = events.iter().filter(|e| e.kind == "verdict").map(|e| e.data["skipped"] == true).collect();
    assert_eq!(skipped, [false, true, true]);
    let asked = models.asked.lock().unwrap();
    let reviews = asked.iter().filter(|(r, a)| *r == Role::Reviewer && a.messages[0].content.contains(REVIEW));
    assert_eq!(reviews.count(), 1, "the reviewer judged the change once");
}

/// Scripted models whose answers to the asks `slow` picks come at the instant `until`
/// (not before): a stage that runs long, ending when the test says whatever the machine's
/// speed.
struct Delayed {
    models: ScriptedModels,
    until: tokio::time::Instant,
    slow: fn(Role, &Ask) -> bool,
    /// When the first slow ask came (Unix milliseconds).
    first_asked: std::sync::Mutex<Option<u64>>,
}

impl Delayed {
    fn review(until: tokio::time::Instant) -> Delayed {
        let slow =
            |role: Role, ask: &Ask| role == Role::Reviewer && ask.messages.iter().any(|m| m.content.contains(REVIEW));
        Delayed { models: ScriptedModels::default(), until, slow, first_asked: Default::default() }
    }

    fn coder(until: tokio::time::Instant) -> Delayed {
        let slow = |role, _: &Ask| role == Role::Coder;
        Delayed { models: ScriptedModels::default(), until, slow, first_asked: Default::default() }
    }
}

#[async_trait]
impl Models for Delayed {
    async fn ask(&self, role: Role, ask: Ask) -> Result<Vec<Sample>, PipelineError> {
        if (self.slow)(role, &ask) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
            self.first_asked.lock().unwrap().get_or_insert(now);
            tokio::time::sleep_until(self.until).await;
        }
        self.models.ask(role, ask).await
    }
    fn count_tokens(&self, role: Role, text: &str) -> usize {
        self.models.count_tokens(role, text)
    }
    fn parallel(&self, role: Role) -> u32 {
        self.models.parallel(role)
    }
}

/// A round that fixes calc.py and whose review rejects it, `review` from now.
fn slow_round(review: std::time::Duration) -> Arc<Delayed> {
    let models = Delayed::review(tokio::time::Instant::now() + review);
    models.models.script(Role::Planner, [PLAN]);
    let fix = block("    return a - b\n", "    return a + b\n");
    models.models.script(Role::Coder, std::iter::repeat_n(fix, 5));
    models.models.answer(Role::Reviewer, REVIEW, [r#"{"approved": false, "problems": ["add() needs a docstring"]}"#]);
    models.models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    Arc::new(models)
}

fn budget_cuts(events: &[quorum::state::TaskEvent]) -> Vec<String> {
    events.iter().filter(|e| e.kind == "budget").map(|e| e.data["cut"].as_str().unwrap().to_string()).collect()
}

/// A round whose review answers `review_at` seconds in, under a budget of `budget`: the
/// task fails with `error`, its fix still the answer, after a budget cut saying `cut`.
async fn slow_review_under_budget(review_at: u64, budget: u64, cut: &str, error: &str) {
    let (_dir, root) = calc_repo();
    let models = slow_round(std::time::Duration::from_secs(review_at));
    let options = PipelineOptions { time_budget_secs: budget, ..edit_blocks() };
    let (_state, p, task, done) = run_task(&root, models, options).await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert!(done.error.as_deref().unwrap_or_default().contains(error), "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let cuts = budget_cuts(&events);
    assert!(cuts.iter().any(|c| c.contains(cut)), "{cuts:?}");
    assert_eq!(kinds(&events), ["preprocess", "plan", "code", "vote", "review", "output"]);
    let diff = done.outputs[&Stage::Output]["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("+    return a + b"), "{diff}");
}

#[tokio::test]
async fn a_spent_time_budget_ends_the_task_after_the_round_it_is_in() {
    // The review answers at 75% of the budget (its own tests follow in seconds).
    slow_review_under_budget(30, 40, "no further round", "time budget").await;
}

#[tokio::test]
async fn the_end_of_the_budget_stops_the_stage_it_falls_in() {
    // A review that would take a minute, in a task of twenty seconds: the voted change,
    // unreviewed, is the answer.
    slow_review_under_budget(60, 20, "review stopped", "time budget is spent in review").await;
}

#[tokio::test]
async fn past_most_of_the_budget_a_plans_later_steps_are_left_out_and_the_steps_done_reviewed() {
    let (_dir, root) = calc_repo();
    commit_readme(&root);
    // The first step's candidates arrive at 72% of a 100 s budget: its tests and vote have
    // the rest, however busy the machine.
    let models = Delayed::coder(tokio::time::Instant::now() + std::time::Duration::from_secs(72));
    let plan = r#"{"subtasks": [
        {"description": "Make add() in calc.py return the sum", "files": ["calc.py"]},
        {"description": "Describe add() in the README", "files": ["calc.py", "README.md"]}], "verify": "pytest"}"#;
    models.models.script(Role::Planner, [plan]);
    models.models.script(Role::Coder, std::iter::repeat_n(block("    return a - b\n", "    return a + b\n"), 5));
    models.models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let options = PipelineOptions { time_budget_secs: 100, ..edit_blocks() };
    let (_state, p, task, done) = run_task(&root, Arc::new(models), options).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert_eq!(kinds(&events), ["preprocess", "plan", "code", "vote", "review", "output"]);
    let cuts = budget_cuts(&events);
    assert!(cuts.iter().any(|c| c.contains("later steps are left out")), "{cuts:?}");
    let output = &done.outputs[&Stage::Output];
    assert!(output["diff"].as_str().unwrap().contains("+    return a + b"), "{output}");
    let explanation = output["explanation"].as_str().unwrap();
    assert!(explanation.contains("Not in this change:\n- Describe add() in the README"), "{explanation}");
}

#[tokio::test]
async fn answers_cut_at_the_coders_deadline_are_judged_by_their_complete_blocks() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    let fix = block("    return a - b\n", "    return a + b\n");
    let unfinished = "FILE: calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a +<<DEADLINE>>";
    let with_more = format!("{fix}\nFILE: calc.py\n<<<<<<< SEARCH\n    return a<<DEADLINE>>");
    models.script(Role::Coder, [with_more.clone(), with_more.clone(), with_more, fix, unfinished.to_string()]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let started = tokio::time::Instant::now();
    let options = PipelineOptions { time_budget_secs: 200, ..edit_blocks() };
    let (_state, p, task, done) = run_task(&root, models.clone(), options).await;

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    assert!(done.outputs[&Stage::Output]["diff"].as_str().unwrap().contains("+    return a + b"));
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let cuts = budget_cuts(&events);
    assert!(cuts.iter().any(|c| c.contains("4 of 5 answers cut short")), "{cuts:?}");
    let flags: Vec<Value> =
        events.iter().filter(|e| e.kind == "candidate").map(|e| e.data["red_flag"].clone()).collect();
    assert_eq!(flags[..4], [Value::Null, Value::Null, Value::Null, Value::Null]);
    assert!(flags[4].as_str().unwrap().contains("cut by the time budget"), "{flags:?}");
    // The answers end early enough that the budget's last share is left after them.
    let asked = models.asked.lock().unwrap();
    let deadline = asked.iter().find(|(r, _)| *r == Role::Coder).and_then(|(_, a)| a.deadline).unwrap();
    let end = started + std::time::Duration::from_secs(200);
    assert!(deadline > started && deadline + std::time::Duration::from_secs(30) <= end, "{:?}", end - deadline);
}

#[tokio::test]
async fn under_a_time_budget_the_tasks_own_calls_are_the_only_probes() {
    let (_dir, root) = calc_repo();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN, PLAN]);
    models.script(Role::Coder, vec![block("    return a - b\n", "    return a + b\n"); 10]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#; 2]);
    let state = tempfile::tempdir().unwrap();
    let options = PipelineOptions { time_budget_secs: 600, ..edit_blocks() };
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), options).await;
    let task = p.create("add(2, 3) gives -1 instead of 5: fix add() in calc.py.", false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let probes = events.iter().find(|e| e.kind == "probes").expect("probes");
    assert_eq!(probes.data["calls"], serde_json::json!(["add(2, 3)"]));
    assert!(budget_cuts(&events).iter().any(|c| c.contains("example calls are the probes")));
    let probes_asked = || {
        let asked = models.asked.lock().unwrap();
        asked.iter().any(|(r, a)| *r == Role::Reviewer && a.messages.iter().any(|m| m.content.contains(PROBES)))
    };
    assert!(!probes_asked(), "the reviewer was not asked for more calls");
    let candidate = events.iter().find(|e| e.kind == "candidate").unwrap();
    assert_eq!(candidate.data["behaviour"], serde_json::json!(["5"]), "{}", candidate.data);

    // A task that writes no call gets no probes: the reviewer is not asked for them.
    let task =
        p.create("add() in calc.py subtracts its arguments; it should add them.", false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let events = p.tasks().events(&task.id, 0).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "probes"), "no probes");
    assert!(budget_cuts(&events).iter().any(|c| c.contains("no probes: the task writes no calls")));
    assert!(!probes_asked(), "the reviewer was not asked for calls");
}

#[tokio::test]
async fn failures_an_earlier_step_brought_are_not_excused_at_the_next() {
    let (_dir, root) = calc_repo();
    std::fs::write(root.join("calc.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(root.join("app.py"), "from calc import add\n\n\ndef total(xs):\n    return sum(xs)\n").unwrap();
    std::fs::write(root.join("tests/test_calc.py"), "").unwrap();
    std::fs::write(
        root.join("tests/test_app.py"),
        "from app import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n",
    )
    .unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "app"]);
    let models = Arc::new(ScriptedModels::default());
    let plan = r#"{"subtasks": [
        {"description": "Rename add to plus in calc.py", "files": ["calc.py"]},
        {"description": "Update the import in app.py", "files": ["app.py"]}], "verify": "pytest"}"#;
    models.script(Role::Planner, [plan]);
    models.script(Role::Coder, vec![block("def add(a, b):\n", "def plus(a, b):\n"); 5]);
    // None fixes app.py's import: every one fails the tests the first step broke, which
    // no candidate is excused, though the tree they start from failed them too.
    let idle = "FILE: app.py\n<<<<<<< SEARCH\ndef total(xs):\n=======\ndef total(xs):  # the sum\n>>>>>>> REPLACE\n";
    models.script(Role::Coder, vec![idle; 5]);
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": false, "problems": ["app.py still imports add"]}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let state = tempfile::tempdir().unwrap();
    // One round: the review's rejection ends the task.
    let options = PipelineOptions { max_rounds: 1, replans: 0, ..edit_blocks() };
    let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), options).await;
    let task = p.create("Rename calc.add to plus and update its caller in app.py", false, Value::Null).await.unwrap();
    let done = p.run(&task.id).await.unwrap();

    let events = p.tasks().events(&task.id, 0).await.unwrap();
    let baselines: Vec<&Value> = events.iter().filter(|e| e.kind == "baseline").map(|e| &e.data).collect();
    assert_eq!(baselines[1]["subtask"], 1);
    assert_eq!(baselines[1]["failing"], json!([]), "the first step broke the import: {}", baselines[1]);
    let step: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "candidate" && e.data["subtask"] == 1 && e.data["round"] == 1)
        .map(|e| &e.data)
        .collect();
    assert_eq!(step.len(), 5);
    assert!(step.iter().all(|c| c["tests"]["success"] == false), "{step:?}");
    // test_total passed before any change, and passes after none of them.
    let flag = "breaks most tests: 0 of the 1 that passed before pass";
    assert!(step.iter().all(|c| c["red_flag"] == flag), "{step:?}");
    assert!(done.error.is_some(), "no candidate of the last step stood");
}

#[tokio::test]
async fn a_task_runs_on_the_workspace_it_was_created_on_and_only_where_that_is_allowed() {
    let (dir, calc) = calc_repo();
    let other = tempfile::tempdir().unwrap();
    let models = Arc::new(ScriptedModels::default());
    models.script(Role::Planner, [PLAN]);
    models.script(Role::Coder, std::iter::repeat_n(block("    return a - b\n", "    return a + b\n"), 5));
    models.answer(Role::Reviewer, REVIEW, [r#"{"approved": true, "problems": []}"#]);
    models.answer(Role::Reviewer, PROBES, [r#"{"calls": []}"#]);
    let state = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(state.path().join("s.redb")).await.unwrap();
    let tasks = TaskStore::new(Arc::new(store));
    let default = Tools::new(Workspace::new(other.path()).unwrap());
    let setup = Setup { options: edit_blocks(), ..Default::default() };

    // A pipeline whose default workspace is elsewhere, with calc's parent as a root.
    let roots = Workspaces::new(default.clone(), &[dir.path().to_path_buf()]).unwrap();
    let p = setup.pipeline(models.clone(), roots, tasks.clone());
    let on_calc = p.workspaces().open("calc").unwrap();
    let task = p.create_on(&on_calc, TASK, false, Value::Null).await.unwrap();
    assert_eq!(task.input.workspace.as_deref(), Some(calc.canonicalize().unwrap().to_str().unwrap()));

    // One that serves only its default workspace does not run it, and says why.
    let single = setup.pipeline(models.clone(), default, tasks.clone());
    let Err(PipelineError::Invalid(why)) = single.run(&task.id).await else { panic!("ran outside its workspaces") };
    assert!(why.contains("outside this server's workspaces"), "{why}");

    let done = p.run(&task.id).await.unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded, "{:?}", done.error);
    let diff = done.outputs[&Stage::Output]["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("+    return a + b"), "{diff}");
    assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0, "the default workspace was touched");
}

#[tokio::test]
async fn a_rewrite_of_the_request_is_used_only_when_it_keeps_every_detail() {
    let (_dir, root) = calc_repo();
    let raw = "um so add() in calc.py it like subtracts, 2 and 3 give -1 instead of 5 you know";
    let kept = "Fix add() in calc.py: it subtracts, so 2 and 3 give -1 instead of 5.";
    for (rewrite, planned) in [(kept, kept), ("Fix the addition function so it adds.", raw)] {
        let models = Arc::new(ScriptedModels::default());
        models.script(Role::Preprocessor, [rewrite]);
        models.script(Role::Planner, [PLAN]);
        let state = tempfile::tempdir().unwrap();
        let options = PipelineOptions { rewrite_task: true, plan_only: true, ..scripted() };
        let p = pipeline(&root, models.clone(), &state.path().join("s.redb"), options).await;
        let task = p.create(raw, false, Value::Null).await.unwrap();
        p.run(&task.id).await.unwrap();
        let planner_saw = {
            let asked = models.asked.lock().unwrap();
            let (_, ask) = asked.iter().find(|(role, _)| *role == Role::Planner).expect("the planner was asked");
            ask.messages[1].content.clone()
        };
        assert!(planner_saw.contains(&format!("Task:\n{planned}\n")), "{planner_saw}");
        let events = p.tasks().events(&task.id, 0).await.unwrap();
        let kept_raw = events.iter().find(|e| e.kind == "rewrite_kept");
        assert_eq!(kept_raw.is_some(), planned == raw);
        if let Some(event) = kept_raw {
            assert_eq!(
                event.data["missing"],
                serde_json::json!(["calc.py", "2", "3", "1", "5"]),
                "`add` is in `addition`: a substring counts"
            );
        }
    }
}
