//! The embedded store survives SIGKILL at any moment, and damaged files give an error
//! that names the file and the fix, never a panic.
//!
//! The writer that gets killed is this test binary itself, re-run with
//! `QUORUM_DURABILITY_CHILD` set so that only `durability_writer_child` does anything.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quorum::state::{EmbeddedStore, Stage, StateError, TaskInput, TaskStore};

use super::support::quorum_bin;

const CHILD_ENV: &str = "QUORUM_DURABILITY_CHILD";
const TASK_ID_FILE: &str = "task-id";

/// Not a test on its own: the writer process that `acknowledged_writes_survive_sigkill`
/// kills. Saves a task whose Code output carries a counter (padded so that a record spans
/// several pages), appends one event per counter, and prints `ack N` once both are committed.
#[test]
fn durability_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let path = PathBuf::from(path);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tasks = TaskStore::new(Arc::new(EmbeddedStore::open(path.clone()).await.unwrap()));
        let id_file = path.with_file_name(TASK_ID_FILE);
        let mut task = match std::fs::read_to_string(&id_file) {
            Ok(id) => tasks.get(&id).await.unwrap().expect("the task written before"),
            Err(_) => {
                let task = tasks.create(TaskInput { text: "durability".into(), ..Default::default() }).await.unwrap();
                std::fs::write(&id_file, &task.id).unwrap();
                task
            }
        };
        // Resume after the last logged event: a kill between the save and its event leaves
        // the record one ahead, and the next run writes that counter again.
        let mut i = tasks.events(&task.id, 0).await.unwrap().len() as u64;
        let pad = "x".repeat(12_000);
        loop {
            task.outputs.insert(Stage::Code, serde_json::json!({"i": i, "pad": pad}));
            tasks.save(&mut task).await.unwrap();
            tasks.event(&task.id, "tick", Some(Stage::Code), serde_json::json!({"i": i})).await.unwrap();
            println!("ack {i}");
            i += 1;
        }
    });
}

/// A small xorshift generator: kill times need spread, not quality.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    for round in 0..15 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "durability::durability_writer_child", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for the first acknowledged write, then kill at a random moment.
        let first_ack = lines.by_ref().map_while(Result::ok).find(|l| l.starts_with("ack "));
        assert!(first_ack.is_some(), "round {round}: the writer never acknowledged a write");
        std::thread::sleep(Duration::from_millis(next_random(&mut seed) % 120));
        child.kill().unwrap();
        child.wait().unwrap();
        let last_ack: u64 = std::iter::once(first_ack.unwrap())
            .chain(lines.map_while(Result::ok))
            .filter_map(|l| l.strip_prefix("ack ").and_then(|n| n.parse().ok()))
            .last()
            .unwrap();
        eprintln!("round {round}: killed after ack {last_ack}");

        let store =
            EmbeddedStore::open(path.clone()).await.unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let tasks = TaskStore::new(Arc::new(store));
        let id = std::fs::read_to_string(path.with_file_name(TASK_ID_FILE)).unwrap();
        let task = tasks.get(&id).await.unwrap().expect("the task record");
        let saved = task.outputs[&Stage::Code]["i"].as_u64().unwrap();
        assert!(saved >= last_ack, "round {round}: acknowledged {last_ack}, but the record holds {saved}");
        assert!(saved <= last_ack + 1, "round {round}: at most the write in flight may be ahead");
        assert_eq!(task.outputs[&Stage::Code]["pad"].as_str().unwrap().len(), 12_000, "whole record");
        let events = tasks.events(&id, 0).await.unwrap();
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event.data["i"], n as u64, "round {round}: events are whole and in order");
        }
        let logged = events.len() as u64;
        assert!(logged > last_ack, "round {round}: acknowledged event {last_ack} missing ({logged} logged)");
        assert!(logged == saved || logged == saved + 1, "round {round}: record {saved} vs {logged} events");
    }
}

fn open_error(path: &Path) -> StateError {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    match runtime.block_on(EmbeddedStore::open(path.to_path_buf())) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

#[test]
fn a_garbage_file_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut seed = 0x9e3779b97f4a7c15u64;
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| next_random(&mut seed) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let message = open_error(&path).to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("Move it aside"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the damaged file is left as it was");
}

#[test]
fn a_truncated_file_is_repaired_or_refused_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tasks = TaskStore::new(Arc::new(EmbeddedStore::open(path.clone()).await.unwrap()));
        for n in 0..50 {
            tasks
                .create(TaskInput { text: format!("task {n} {}", "y".repeat(2000)), ..Default::default() })
                .await
                .unwrap();
        }
    });
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 3).unwrap();
    let outcome = std::panic::catch_unwind(|| {
        tokio::runtime::Runtime::new().unwrap().block_on(EmbeddedStore::open(path.clone())).map(|_| ())
    });
    match outcome.expect("opening a truncated file must not panic") {
        Ok(()) => {}
        Err(e) => assert!(e.to_string().contains(&path.display().to_string()), "{e}"),
    }
}

#[test]
fn a_directory_or_a_file_in_use_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let message = open_error(dir.path()).to_string();
    assert!(message.contains(&dir.path().display().to_string()), "{message}");

    let path = dir.path().join("state.redb");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _held = runtime.block_on(EmbeddedStore::open(path.clone())).unwrap();
    let message = runtime.block_on(EmbeddedStore::open(path.clone())).err().expect("a second writer").to_string();
    assert!(message.contains("in use by another quorum process"), "{message}");
    assert!(message.contains("--state"), "{message}");
}

#[test]
fn the_cli_reports_a_damaged_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    std::fs::write(&path, b"definitely not a database, but long enough to look like a header").unwrap();
    let out = Command::new(quorum_bin()).args(["tasks", "list", "--state"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("Move it aside"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
