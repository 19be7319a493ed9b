//! The whole pipeline on the real llama.cpp with a real small model (Qwen2.5-Coder-0.5B
//! for every role), through the real server: the events of every stage arrive in order
//! over SSE, the task record holds every stage, and a task interrupted by SIGKILL
//! resumes after its last completed stage when the server is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use futures::StreamExt;
use serde_json::{json, Value};

use super::pipeline::{calc_repo, TASK};
use super::support::{quorum_bin, repo_root, spawn_server};

fn qwen() -> PathBuf {
    let path = repo_root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    assert!(path.exists(), "{} is missing: run scripts/fetch-small-models.sh", path.display());
    path
}

/// `quorum serve` on a free port; returns the process and its URL.
fn serve(workspace: &Path, state: &Path, config: &Path) -> (Child, String) {
    let model = format!("all={}", qwen().display());
    spawn_server(&[
        "--config".into(),
        config.into(),
        "serve".into(),
        "--port".into(),
        "0".into(),
        "--model".into(),
        model.into(),
        "--workspace".into(),
        workspace.into(),
        "--state".into(),
        state.into(),
    ])
}

async fn wait_ready(url: &str) {
    // A deadline, not a count of tries: loading takes longer on a busy machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        if reqwest::get(format!("{url}/health")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server did not load its model");
}

/// Reads SSE events (`event:` + `data:`) until `stop` says so or the stream ends.
async fn read_sse(res: reqwest::Response, mut stop: impl FnMut(&str, &Value) -> bool) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let kind = block.lines().find_map(|l| l.strip_prefix("event:")).map(|k| k.trim().to_string());
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(|d| d.trim().to_string());
            if let (Some(kind), Some(data)) = (kind, data) {
                let value: Value = serde_json::from_str(&data).unwrap();
                let done = stop(&kind, &value);
                events.push((kind, value));
                if done {
                    return events;
                }
            }
        }
    }
    events
}

fn stages(events: &[(String, Value)]) -> Vec<String> {
    events.iter().filter(|(k, _)| k == "stage_started").map(|(_, v)| v["stage"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
#[allow(clippy::await_holding_lock)] // `serial`: one runtime per test
async fn the_pipeline_runs_end_to_end_and_resumes_after_a_crash() {
    let _turn = super::engine::serial();
    let (_dir, root) = calc_repo();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.redb");
    let config = state_dir.path().join("quorum.toml");
    // One round, no re-plan: enough to see every stage without minutes of CPU.
    std::fs::write(
        &config,
        "[pipeline]\nmax_rounds = 1\nreplans = 0\nmax_votes = 5\ncoder_max_tokens = 200\nmax_candidates = 5\n",
    )
    .unwrap();
    let client = reqwest::Client::new();

    let (mut server, url) = serve(&root, &state, &config);
    wait_ready(&url).await;
    let res = client.post(format!("{url}/api/workflow")).json(&json!({"task": TASK})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let events = read_sse(res, |kind, _| kind == "finished").await;
    assert_eq!(events[0].0, "task", "the first event names the task");
    let id = events[0].1["id"].as_str().unwrap().to_string();
    // One code-vote pair per sub-task of the plan (the planner decides how many).
    let order = stages(&events);
    let pairs = order.iter().filter(|s| *s == "code").count();
    let mut expected = vec!["preprocess", "plan"];
    expected.extend(std::iter::repeat_n(["code", "vote"], pairs).flatten());
    expected.extend(["review", "output"]);
    assert!(pairs >= 1 && order == expected, "{order:?}");
    assert_eq!(events.iter().filter(|(k, _)| k == "candidate").count(), 5 * pairs);
    assert!(events.iter().any(|(k, _)| k == "tally") && events.iter().any(|(k, _)| k == "verdict"));
    let seqs: Vec<u64> = events[1..].iter().map(|(_, v)| v["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    let task: Value = client.get(format!("{url}/api/task/{id}")).send().await.unwrap().json().await.unwrap();
    for stage in ["preprocess", "plan", "code", "vote", "review", "output"] {
        assert!(task["outputs"][stage].is_object(), "{stage} saved: {task}");
    }
    assert!(matches!(task["status"].as_str(), Some("succeeded" | "failed")));
    assert_eq!(task["attempts"].as_array().unwrap().len(), 5 * pairs);
    assert_eq!(std::fs::read_to_string(root.join("calc.py")).unwrap(), super::pipeline::CALC_PY, "not applied");

    // A second task; the server dies once its plan is saved.
    let res = client.post(format!("{url}/api/workflow")).json(&json!({"task": TASK})).send().await.unwrap();
    let early = read_sse(res, |kind, v| kind == "stage_finished" && v["stage"] == "plan").await;
    let id = early[0].1["id"].as_str().unwrap().to_string();
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, url) = serve(&root, &state, &config);
    let task: Value = client.get(format!("{url}/api/task/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(task["status"], "interrupted");
    assert_eq!(task["last_completed_stage"], "plan");
    wait_ready(&url).await;
    let res = client.post(format!("{url}/api/task/{id}/resume")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let from = task["events"].as_array().unwrap().len();
    let res = client.get(format!("{url}/api/task/{id}/events?from={from}")).send().await.unwrap();
    let resumed = read_sse(res, |kind, _| kind == "finished").await;
    assert_eq!(resumed[0].0, "resumed");
    assert_eq!(resumed[0].1["data"]["after"], "plan");
    let order = stages(&resumed);
    assert_eq!(order.first().map(String::as_str), Some("code"), "the saved plan is reused: {order:?}");
    assert!(
        !order.contains(&"plan".to_string()) && order.ends_with(&["review".to_string(), "output".to_string()]),
        "{order:?}"
    );
    let task: Value = client.get(format!("{url}/api/task/{id}")).send().await.unwrap().json().await.unwrap();
    assert!(task["outputs"]["output"].is_object());
    let again = client.post(format!("{url}/api/task/{id}/resume")).send().await.unwrap();
    assert_eq!(again.status(), 409, "a finished task does not resume");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn quorum_run_shows_the_stages_then_the_result() {
    let _turn = super::engine::serial();
    let (_dir, root) = calc_repo();
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(quorum_bin())
        .args([
            "run",
            TASK,
            "--options",
            r#"{"candidates": 2, "max_candidates": 2, "max_rounds": 1, "replans": 0, "coder_max_tokens": 96}"#,
            "--model",
        ])
        .arg(format!("all={}", qwen().display()))
        .arg("--workspace")
        .arg(&root)
        .arg("--state")
        .arg(state.path().join("state.redb"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let positions: Vec<Option<usize>> =
        ["▸ preprocess", "▸ plan", "▸ code", "▸ vote", "▸ review", "▸ output"].iter().map(|s| stderr.find(s)).collect();
    assert!(positions.iter().all(Option::is_some) && positions.windows(2).all(|w| w[0] < w[1]), "{stderr}");
    assert!(stdout.contains("Plan:"), "{stdout}");
    // Approved: exit 0. Otherwise a failure that says so and where to look.
    assert!(out.status.success() || stderr.contains("ended without an approved change"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("calc.py")).unwrap(),
        super::pipeline::CALC_PY,
        "no --apply, no change"
    );
}
