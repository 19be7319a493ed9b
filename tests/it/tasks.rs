//! Task records through the interfaces: `GET /api/task/{id}`, `GET /api/tasks`, the
//! `quorum tasks` CLI (while a writer holds the file), and recovery when `quorum serve`
//! starts on a file whose tasks were left running.

use std::process::Command;
use std::sync::Arc;

use quorum::api::{self, AppState};
use quorum::state::{EmbeddedStore, Stage, Task, TaskInput, TaskStore};
use serde_json::Value;

use super::support::{quorum_bin, repo_tools, smollm, smollm_config, spawn_server, temp_tasks};

/// A queued task, a finished one and one stopped in the code stage.
async fn seed(tasks: &TaskStore) -> (Task, Task, Task) {
    let queued = tasks.create(TaskInput { text: "queued one".into(), ..Default::default() }).await.unwrap();
    let mut done = tasks.create(TaskInput { text: "finished one".into(), ..Default::default() }).await.unwrap();
    tasks.start_stage(&mut done, Stage::Plan).await.unwrap();
    tasks.finish_stage(&mut done, Stage::Plan, serde_json::json!({"steps": 1})).await.unwrap();
    tasks.finish(&mut done, None).await.unwrap();
    let mut running = tasks.create(TaskInput { text: "running one".into(), ..Default::default() }).await.unwrap();
    tasks.start_stage(&mut running, Stage::Plan).await.unwrap();
    tasks.finish_stage(&mut running, Stage::Plan, serde_json::json!({"steps": 3})).await.unwrap();
    tasks.start_stage(&mut running, Stage::Code).await.unwrap();
    (queued, done, running)
}

#[tokio::test]
async fn the_api_returns_and_lists_tasks() {
    let (tasks, _dir) = temp_tasks().await;
    let (queued, done, running) = seed(&tasks).await;
    let state = AppState::new(&smollm_config().profile, tasks, repo_tools(), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let res = client.get(format!("{url}{path}")).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = get(format!("/api/task/{}", done.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["last_completed_stage"], "plan");
    assert_eq!(body["outputs"]["plan"]["steps"], 1);
    let kinds: Vec<_> = body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stage_started", "stage_finished", "finished"]);

    let (_, body) = get(format!("/api/task/{}", running.id)).await;
    assert_eq!(body["status"], "code");

    let (status, body) = get("/api/tasks".into()).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = body["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, [running.id.clone(), done.id.clone(), queued.id.clone()], "newest first");
    let (_, body) = get("/api/tasks?status=running".into()).await;
    assert_eq!(body["tasks"][0]["id"], running.id.as_str());
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    let (_, body) = get("/api/tasks?status=queued&limit=5".into()).await;
    assert_eq!(body["tasks"][0]["title"], "queued one");

    let (status, body) = get("/api/task/nope".into()).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "task_not_found");
    let (status, body) = get("/api/tasks?status=sleeping".into()).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown task status `sleeping`"), "{body}");
    let (status, _) = get("/api/tasks?limit=many".into()).await;
    assert_eq!(status, 400);
}

fn run_cli(args: &[&str], state: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(quorum_bin()).args(args).arg("--state").arg(state).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn the_cli_lists_and_shows_tasks_while_a_server_writes_the_file() {
    let (tasks, dir) = temp_tasks().await;
    let (queued, done, running) = seed(&tasks).await;
    let path = dir.path().join("state.redb");
    // `tasks` (the writer) stays open throughout, as a running server would.

    let (ok, out, err) = run_cli(&["tasks", "list"], &path);
    assert!(ok, "{err}");
    let lines: Vec<_> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(
        lines[1].starts_with(&running.id) && lines[1].contains("code") && lines[1].contains("running one"),
        "{out}"
    );
    assert!(lines[3].starts_with(&queued.id) && lines[3].contains("queued"), "{out}");

    let (ok, out, _) = run_cli(&["tasks", "list", "--status", "succeeded", "--json"], &path);
    assert!(ok);
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(body["tasks"][0]["id"], done.id.as_str());

    // A write made now is visible to the next reader.
    let mut later = tasks.create(TaskInput { text: "made later".into(), ..Default::default() }).await.unwrap();
    tasks.finish(&mut later, Some("out of ideas".into())).await.unwrap();
    let (ok, out, _) = run_cli(&["tasks", "show", &later.id], &path);
    assert!(ok);
    assert!(
        out.contains("status   failed") && out.contains("error    out of ideas") && out.contains("finished"),
        "{out}"
    );

    let (ok, out, _) = run_cli(&["tasks", "show", &running.id, "--json"], &path);
    assert!(ok);
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["outputs"]["plan"]["steps"], 3);
    assert_eq!(body["events"].as_array().unwrap().len(), 3);

    let (ok, _, err) = run_cli(&["tasks", "show", "nope"], &path);
    assert!(!ok);
    assert!(err.contains("no task `nope`") && err.contains("quorum tasks list"), "{err}");
    let (ok, _, err) = run_cli(&["tasks", "list", "--status", "sleeping"], &path);
    assert!(!ok);
    assert!(err.contains("unknown task status"), "{err}");
    let (ok, out, _) = run_cli(&["tasks", "list"], &dir.path().join("absent.redb"));
    assert!(ok);
    assert!(out.contains("No tasks yet"), "{out}");
}

#[tokio::test]
async fn serve_marks_tasks_left_running_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let (running, done) = {
        let tasks = TaskStore::new(Arc::new(EmbeddedStore::open(path.clone()).await.unwrap()));
        let (_, done, running) = seed(&tasks).await;
        (running, done)
    };
    let model = format!("all={}", smollm().display());
    let (mut child, url) = spawn_server(&[
        "serve".into(),
        "--port".into(),
        "0".into(),
        "--model".into(),
        model.into(),
        "--state".into(),
        path.into(),
    ]);
    let task: Value = reqwest::get(format!("{url}/api/task/{}", running.id)).await.unwrap().json().await.unwrap();
    let finished: Value = reqwest::get(format!("{url}/api/task/{}", done.id)).await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(task["status"], "interrupted");
    assert_eq!(task["last_completed_stage"], "plan");
    let last = task["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "interrupted");
    assert_eq!(last["data"]["was"], "code");
    assert_eq!(last["data"]["resume_after"], "plan");
    assert_eq!(finished["status"], "succeeded");
}

#[tokio::test]
async fn the_cli_cancels_a_task_in_a_file_no_server_holds_and_asks_the_server_that_does() {
    let (tasks, dir) = temp_tasks().await;
    let queued = tasks.create(TaskInput { text: "queued".into(), ..Default::default() }).await.unwrap();
    let path = dir.path().join("state.redb");
    // The writer is open, as a server's would be: the CLI must go through the server,
    // and none answers at this address.
    let (ok, _, err) = run_cli(&["tasks", "cancel", &queued.id, "--server", "http://127.0.0.1:9"], &path);
    assert!(!ok && err.contains("a server holds the state file"), "{err}");
    // A server that holds the file answers for it.
    let through = tasks.create(TaskInput { text: "through the server".into(), ..Default::default() }).await.unwrap();
    let state = AppState::new(&smollm_config().profile, tasks.clone(), repo_tools(), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, async move {
        stopped.await.ok();
    }));
    let (ok, out, err) = tokio::task::spawn_blocking({
        let (id, path) = (through.id.clone(), path.clone());
        move || run_cli(&["tasks", "cancel", &id, "--server", &url], &path)
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    assert_eq!(tasks.get(&through.id).await.unwrap().unwrap().status.to_string(), "cancelled");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    drop(tasks);
    let (ok, out, err) = run_cli(&["tasks", "cancel", &queued.id], &path);
    assert!(ok, "{err}");
    assert!(out.contains("cancelled"), "{out}");
    let (ok, _, err) = run_cli(&["tasks", "cancel", &queued.id], &path);
    assert!(!ok && err.contains("has already cancelled"), "{err}");
    let (_, out, _) = run_cli(&["tasks", "show", &queued.id], &path);
    assert!(out.contains("status   cancelled"), "{out}");
}
