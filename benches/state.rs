//! Task-state operations per second on each backend (criterion's elements/s): saving a
//! task record (~4 KB of JSON), appending an event (RPUSH + PUBLISH), reading a record,
//! and listing 100 tasks. The redb file commits durably (fsync) on every write. The Redis
//! backend uses a local `redis-server` started here (skipped with a message if absent;
//! `scripts/setup.sh --test` installs it).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorum::state::{EmbeddedStore, RedisStore, Stage, StateStore, TaskInput, TaskStore};
use tokio::runtime::Runtime;

struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<(RedisServer, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("skipping the redis backend: redis-server is not installed (scripts/setup.sh --test)");
        return None;
    };
    let server = RedisServer(child);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, format!("redis://127.0.0.1:{port}/0")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<dyn StateStore>) {
    let tasks = TaskStore::new(store);
    let mut task = rt
        .block_on(tasks.create(TaskInput { text: "Add a --verbose flag to the CLI".into(), ..Default::default() }))
        .unwrap();
    task.outputs.insert(Stage::Plan, serde_json::json!({"steps": vec!["a step"; 8], "context": "x".repeat(4000)}));
    for n in 0..99 {
        rt.block_on(tasks.create(TaskInput { text: format!("task {n}"), ..Default::default() })).unwrap();
    }

    let mut group = c.benchmark_group(format!("state/{name}"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("save task", |b| b.iter(|| rt.block_on(tasks.save(&mut task)).unwrap()));
    group.bench_function("append event", |b| {
        b.iter(|| {
            rt.block_on(tasks.event(&task.id, "vote", Some(Stage::Vote), serde_json::json!({"for": "B"}))).unwrap()
        })
    });
    group.bench_function("read task", |b| b.iter(|| rt.block_on(tasks.get(&task.id)).unwrap().unwrap()));
    group.bench_function("list 100 tasks", |b| b.iter(|| rt.block_on(tasks.list(None, 100)).unwrap()));
    group.finish();
}

fn state(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let embedded = rt.block_on(EmbeddedStore::open(dir.path().join("state.redb"))).unwrap();
    bench_backend(c, &rt, "redb", Arc::new(embedded));
    if let Some((_server, url)) = start_redis() {
        let redis = rt.block_on(RedisStore::connect(&url)).unwrap();
        bench_backend(c, &rt, "redis", Arc::new(redis));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = state
}
criterion_main!(benches);
