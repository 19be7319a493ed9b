//! One behaviour suite for the state store, run against each backend: the redb file and
//! a real `redis-server`. Each test gets a fresh store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use quorum::state::{SetOptions, Stage, StateError, StateStore, TaskInput, TaskStatus, TaskStore, Ttl};

/// Instantiates every suite test once per backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = quorum::state::EmbeddedStore::open(dir.path().join("state.redb")).await.unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = crate::support::RedisServer::start();
                    let store = quorum::state::RedisStore::connect(&server.url).await.unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

suite!(
    strings,
    types_are_enforced,
    hashes,
    lists,
    expiry,
    scan_by_prefix,
    publish_subscribe,
    task_records,
    recovery,
    lost_and_unreadable_records_are_reported,
    cancel_requests
);

type Store = Arc<dyn StateStore>;

async fn strings(s: Store) {
    assert_eq!(s.get("k").await.unwrap(), None);
    assert!(s.set("k", b"one", SetOptions::default()).await.unwrap());
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(s.set("k", b"two", SetOptions::default()).await.unwrap());
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));

    let nx = SetOptions { only_if_absent: true, ..Default::default() };
    assert!(!s.set("k", b"three", nx).await.unwrap(), "NX on an existing key");
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(s.set("fresh", b"x", nx).await.unwrap(), "NX on an absent key");

    assert!(s.exists("k").await.unwrap());
    assert!(s.del("k").await.unwrap());
    assert!(!s.del("k").await.unwrap());
    assert!(!s.exists("k").await.unwrap());

    assert_eq!(s.incr("n").await.unwrap(), 1);
    assert_eq!(s.incr("n").await.unwrap(), 2);
    assert_eq!(s.get("n").await.unwrap().as_deref(), Some(&b"2"[..]));
    s.set("text", b"abc", SetOptions::default()).await.unwrap();
    assert!(matches!(s.incr("text").await, Err(StateError::NotInteger(k)) if k == "text"));
    // Binary values survive untouched.
    let binary: Vec<u8> = (0..=255).collect();
    s.set("bin", &binary, SetOptions::default()).await.unwrap();
    assert_eq!(s.get("bin").await.unwrap(), Some(binary));
}

async fn types_are_enforced(s: Store) {
    s.set("str", b"v", SetOptions::default()).await.unwrap();
    s.hset("hash", &[("f", b"v")]).await.unwrap();
    s.rpush("list", &[b"v"]).await.unwrap();
    assert!(matches!(s.hset("str", &[("f", b"v")]).await, Err(StateError::WrongType(k)) if k == "str"));
    assert!(matches!(s.rpush("hash", &[b"v"]).await, Err(StateError::WrongType(_))));
    assert!(matches!(s.get("list").await, Err(StateError::WrongType(_))));
    assert!(matches!(s.hget("list", "f").await, Err(StateError::WrongType(_))));
    assert!(matches!(s.lrange("str", 0, -1).await, Err(StateError::WrongType(_))));
    assert!(matches!(s.incr("hash").await, Err(StateError::WrongType(_))));
    // The failed commands changed nothing.
    assert_eq!(s.get("str").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(s.llen("list").await.unwrap(), 1);
    // SET replaces a value of any type, as in Redis.
    s.set("hash", b"now a string", SetOptions::default()).await.unwrap();
    assert_eq!(s.get("hash").await.unwrap().as_deref(), Some(&b"now a string"[..]));
    assert!(s.hgetall("hash").await.is_err());
}

async fn hashes(s: Store) {
    assert_eq!(s.hset("h", &[("a", b"1"), ("b", b"2")]).await.unwrap(), 2);
    assert_eq!(s.hset("h", &[("b", b"20"), ("c", b"3")]).await.unwrap(), 1, "only c is new");
    assert_eq!(s.hget("h", "b").await.unwrap().as_deref(), Some(&b"20"[..]));
    assert_eq!(s.hget("h", "zz").await.unwrap(), None);
    assert_eq!(s.hget("nohash", "a").await.unwrap(), None);
    let all = s.hgetall("h").await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(all["c"], b"3");
    // A neighbouring key's fields do not leak into this hash.
    s.hset("h2", &[("x", b"9")]).await.unwrap();
    s.hset("g", &[("y", b"8")]).await.unwrap();
    assert_eq!(s.hgetall("h").await.unwrap().len(), 3);

    assert_eq!(s.hdel("h", &["a", "missing"]).await.unwrap(), 1);
    assert_eq!(s.hgetall("h").await.unwrap().len(), 2);
    assert_eq!(s.hdel("h", &["b", "c"]).await.unwrap(), 2);
    assert!(!s.exists("h").await.unwrap(), "an emptied hash is deleted");
    assert!(s.hgetall("h").await.unwrap().is_empty());
    assert_eq!(s.hgetall("h2").await.unwrap().len(), 1);
}

async fn lists(s: Store) {
    assert_eq!(s.llen("l").await.unwrap(), 0);
    assert!(s.lrange("l", 0, -1).await.unwrap().is_empty());
    assert_eq!(s.rpush("l", &[b"a", b"b"]).await.unwrap(), 2);
    assert_eq!(s.rpush("l", &[b"c"]).await.unwrap(), 3);
    s.rpush("l2", &[b"other"]).await.unwrap();
    let range = |a: i64, b: i64| {
        let s = s.clone();
        async move {
            s.lrange("l", a, b).await.unwrap().into_iter().map(|v| String::from_utf8(v).unwrap()).collect::<Vec<_>>()
        }
    };
    assert_eq!(range(0, -1).await, ["a", "b", "c"]);
    assert_eq!(range(1, 1).await, ["b"]);
    assert_eq!(range(-2, -1).await, ["b", "c"]);
    assert_eq!(range(2, 99).await, ["c"]);
    assert!(range(3, 5).await.is_empty());
    assert!(range(2, 1).await.is_empty());
    assert_eq!(s.llen("l").await.unwrap(), 3);
    assert!(s.del("l").await.unwrap());
    assert_eq!(s.llen("l").await.unwrap(), 0);
    assert_eq!(s.rpush("l", &[b"again"]).await.unwrap(), 1, "a deleted list starts over");
    assert_eq!(s.lrange("l2", 0, -1).await.unwrap(), vec![b"other".to_vec()]);
}

async fn expiry(s: Store) {
    let short = SetOptions { ttl: Some(Duration::from_millis(300)), ..Default::default() };
    s.set("temp", b"v", short).await.unwrap();
    s.set("kept", b"v", SetOptions::default()).await.unwrap();
    s.hset("temp-hash", &[("f", b"v")]).await.unwrap();
    assert!(s.expire("temp-hash", Duration::from_millis(300)).await.unwrap());
    assert!(!s.expire("missing", Duration::from_secs(1)).await.unwrap());

    // Read on a key that outlives any stall of a busy machine between the two calls.
    s.set("long", b"v", SetOptions { ttl: Some(Duration::from_secs(600)), ..Default::default() }).await.unwrap();
    match s.ttl("long").await.unwrap() {
        Ttl::Expires(d) => assert!(d <= Duration::from_secs(600) && d > Duration::from_secs(300), "{d:?}"),
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert_eq!(s.ttl("kept").await.unwrap(), Ttl::Persistent);
    assert_eq!(s.ttl("missing").await.unwrap(), Ttl::Missing);

    // SET without a TTL clears the one a key had.
    s.set("cleared", b"v", short).await.unwrap();
    s.set("cleared", b"w", SetOptions::default()).await.unwrap();
    assert_eq!(s.ttl("cleared").await.unwrap(), Ttl::Persistent);

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.get("temp").await.unwrap(), None);
    assert!(!s.exists("temp").await.unwrap());
    assert!(s.hgetall("temp-hash").await.unwrap().is_empty());
    assert_eq!(s.ttl("temp").await.unwrap(), Ttl::Missing);
    assert!(s.scan_prefix("temp").await.unwrap().is_empty());
    assert!(s.exists("kept").await.unwrap());
    assert!(s.exists("cleared").await.unwrap());
    // An expired key can be set again, NX included.
    let nx = SetOptions { only_if_absent: true, ..Default::default() };
    assert!(s.set("temp", b"new", nx).await.unwrap());
    assert_eq!(s.ttl("temp").await.unwrap(), Ttl::Persistent);
}

async fn scan_by_prefix(s: Store) {
    for key in ["task:1", "task:2", "task-events:1", "taskx", "other", "x*1", "xy"] {
        s.set(key, b"v", SetOptions::default()).await.unwrap();
    }
    s.hset("task:3", &[("f", b"v")]).await.unwrap();
    assert_eq!(s.scan_prefix("task:").await.unwrap(), ["task:1", "task:2", "task:3"]);
    // Glob characters in a prefix are literal.
    assert_eq!(s.scan_prefix("x*").await.unwrap(), ["x*1"]);
    assert!(s.scan_prefix("nothing").await.unwrap().is_empty());
    assert_eq!(s.scan_prefix("").await.unwrap().len(), 8);
}

async fn next(sub: &mut quorum::state::Subscription) -> Vec<u8> {
    tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("a message").unwrap()
}

async fn publish_subscribe(s: Store) {
    assert_eq!(s.publish("ch", b"nobody listens").await.unwrap(), 0);
    let mut first = s.subscribe("ch").await.unwrap();
    let mut second = s.subscribe("ch").await.unwrap();
    let mut other = s.subscribe("other").await.unwrap();
    assert_eq!(s.publish("ch", b"one").await.unwrap(), 2);
    assert_eq!(s.publish("ch", b"two").await.unwrap(), 2);
    assert_eq!(next(&mut first).await, b"one");
    assert_eq!(next(&mut first).await, b"two");
    assert_eq!(next(&mut second).await, b"one");
    assert_eq!(next(&mut second).await, b"two");
    assert!(tokio::time::timeout(Duration::from_millis(200), other.next()).await.is_err(), "other channel is silent");
    drop((first, second));
    // Redis notices closed subscriber connections asynchronously.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.publish("ch", b"gone").await.unwrap() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "dropped subscribers still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn task_records(s: Store) {
    let tasks = TaskStore::new(s);
    let input = TaskInput {
        text: "Add a --verbose flag\nto the CLI".into(),
        workspace: Some("/src".into()),
        ..Default::default()
    };
    let mut task = tasks.create(input.clone()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    let mut live = tasks.subscribe(&task.id).await.unwrap();

    tasks.start_stage(&mut task, Stage::Preprocess).await.unwrap();
    tasks
        .finish_stage(&mut task, Stage::Preprocess, serde_json::json!({"text": "Add a --verbose flag"}))
        .await
        .unwrap();
    tasks.start_stage(&mut task, Stage::Plan).await.unwrap();

    let stored = tasks.get(&task.id).await.unwrap().unwrap();
    assert_eq!(stored, task);
    assert_eq!(stored.status, TaskStatus::InStage(Stage::Plan));
    assert_eq!(stored.last_completed_stage, Some(Stage::Preprocess));
    assert_eq!(stored.outputs[&Stage::Preprocess]["text"], "Add a --verbose flag");
    assert_eq!(stored.version, 4, "created, then saved at each of three transitions");

    let events = tasks.events(&task.id, 0).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.seq, e.kind.as_str(), e.stage)).collect();
    assert_eq!(
        kinds,
        [
            (0, "stage_started", Some(Stage::Preprocess)),
            (1, "stage_finished", Some(Stage::Preprocess)),
            (2, "stage_started", Some(Stage::Plan))
        ]
    );
    assert_eq!(tasks.events(&task.id, 2).await.unwrap()[0].seq, 2);
    for expected in &events {
        let got = tokio::time::timeout(Duration::from_secs(5), live.next()).await.unwrap().unwrap();
        assert_eq!(&got, expected, "live events equal the log");
    }

    let mut done = tasks.create(TaskInput { text: "second".into(), ..Default::default() }).await.unwrap();
    tasks.finish(&mut done, None).await.unwrap();
    let all = tasks.list(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [done.id.as_str(), task.id.as_str()],
        "newest first"
    );
    assert_eq!(all[1].title, "Add a --verbose flag");
    let running = tasks.list(Some(TaskStatus::Running), 10).await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].id, task.id);
    assert_eq!(tasks.list(Some(TaskStatus::Succeeded), 10).await.unwrap()[0].id, done.id);
    assert_eq!(tasks.list(None, 1).await.unwrap().len(), 1);
    assert!(tasks.get("no-such-task").await.unwrap().is_none());
}

async fn recovery(s: Store) {
    let dead = TaskStore::new(s.clone());
    dead.renew_lease().await.unwrap();
    let mut task = dead.create(TaskInput { text: "fix the bug".into(), ..Default::default() }).await.unwrap();
    dead.start_stage(&mut task, Stage::Plan).await.unwrap();
    dead.finish_stage(&mut task, Stage::Plan, serde_json::json!({"steps": 2})).await.unwrap();
    dead.start_stage(&mut task, Stage::Code).await.unwrap();
    let mut finished = dead.create(TaskInput { text: "done".into(), ..Default::default() }).await.unwrap();
    dead.finish(&mut finished, None).await.unwrap();

    let next = TaskStore::new(s.clone());
    if s.exclusive() {
        // The embedded file has one writer: whatever an earlier process left running is dead.
        assert_eq!(next.recover().await.unwrap(), [task.id.clone()]);
    } else {
        // On a shared Redis the owner's lease is still fresh: it may be alive.
        assert!(next.recover().await.unwrap().is_empty());
        // Its lease lapses (as after LEASE without renewal).
        assert!(s.del(&format!("instance:{}", dead.instance())).await.unwrap());
        assert_eq!(next.recover().await.unwrap(), [task.id.clone()]);
    }
    let recovered = next.get(&task.id).await.unwrap().unwrap();
    assert_eq!(recovered.status, TaskStatus::Interrupted);
    assert_eq!(recovered.last_completed_stage, Some(Stage::Plan), "resumable after the last finished stage");
    assert_eq!(recovered.outputs[&Stage::Plan]["steps"], 2);
    let last = next.events(&task.id, 0).await.unwrap().pop().unwrap();
    assert_eq!(last.kind, "interrupted");
    assert_eq!(last.data["was"], "code");
    assert_eq!(next.get(&finished.id).await.unwrap().unwrap().status, TaskStatus::Succeeded);
    assert!(next.recover().await.unwrap().is_empty(), "recovery is idempotent");
}

async fn lost_and_unreadable_records_are_reported(s: Store) {
    let tasks = TaskStore::new(s.clone());
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        ids.push(tasks.create(TaskInput { text: text.into(), ..Default::default() }).await.unwrap().id);
    }
    let audit = tasks.audit().await.unwrap();
    assert_eq!((audit.found, audit.expected, audit.lost()), (3, 3, 0));
    assert!(audit.unreadable.is_empty());
    // As a file that was not closed cleanly can come back: one record gone, one damaged.
    assert!(s.del(&format!("task:{}", ids[0])).await.unwrap());
    s.set(&format!("task:{}", ids[1]), b"{not json", SetOptions::default()).await.unwrap();
    let audit = tasks.audit().await.unwrap();
    assert_eq!((audit.found, audit.expected, audit.lost()), (1, 3, 1));
    assert_eq!(audit.unreadable, [ids[1].clone()]);
    // Listing skips the damaged record instead of failing.
    assert_eq!(tasks.list(None, 10).await.unwrap().len(), 1);
    // A loss is reported once; the damaged record every time.
    let again = tasks.audit().await.unwrap();
    assert_eq!((again.lost(), again.unreadable.len()), (0, 1));
}

async fn cancel_requests(s: Store) {
    let tasks = TaskStore::new(s.clone());
    let queued = tasks.create(TaskInput { text: "queued".into(), ..Default::default() }).await.unwrap();
    match tasks.cancel(&queued.id).await.unwrap() {
        quorum::state::Cancel::Done(task) => assert_eq!(task.status, TaskStatus::Cancelled),
        other => panic!("a task that runs nowhere is cancelled at once: {other:?}"),
    }
    assert!(matches!(tasks.cancel(&queued.id).await.unwrap(), quorum::state::Cancel::Finished(TaskStatus::Cancelled)));
    let running = tasks.create(TaskInput { text: "running".into(), ..Default::default() }).await.unwrap();
    assert!(tasks.claim(&running.id).await.unwrap());
    assert!(matches!(tasks.cancel(&running.id).await.unwrap(), quorum::state::Cancel::Requested));
    assert!(tasks.cancel_requested(&running.id).await.unwrap(), "its runner sees the request");
    tasks.release(&running.id).await.unwrap();
    assert!(!tasks.cancel_requested(&running.id).await.unwrap());
    assert!(matches!(tasks.cancel("no-such-task").await.unwrap(), quorum::state::Cancel::Unknown));
}

#[tokio::test]
async fn the_embedded_store_purges_expired_keys_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = quorum::state::EmbeddedStore::open(dir.path().join("state.redb")).await.unwrap();
    let short = SetOptions { ttl: Some(Duration::from_millis(50)), ..Default::default() };
    store.set("a", b"v", short).await.unwrap();
    store.rpush("b", &[b"1", b"2"]).await.unwrap();
    store.expire("b", Duration::from_millis(50)).await.unwrap();
    store.set("kept", b"v", SetOptions::default()).await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 0, "nothing is due yet");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.purge_expired().await.unwrap(), 2);
    assert_eq!(store.purge_expired().await.unwrap(), 0, "purged keys are gone from the file");
    assert_eq!(store.scan_prefix("").await.unwrap(), ["kept"]);
}

#[test]
fn a_bad_state_location_is_explained_by_the_cli() {
    let run = |state: &str| {
        let out = std::process::Command::new(crate::support::quorum_bin())
            .args(["tasks", "list", "--state", state])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Port 1: nothing listens there.
    let err = run("redis://127.0.0.1:1/0");
    assert!(
        err.contains("cannot connect to Redis at redis://127.0.0.1:1/0") && err.contains("redis-server running"),
        "{err}"
    );
    let err = run("http://127.0.0.1/state");
    assert!(err.contains("invalid state location") && err.contains("redis://HOST"), "{err}");
}

#[tokio::test]
async fn the_redis_store_reconnects_after_the_server_restarts() {
    let server = crate::support::RedisServer::start();
    let port: u16 = server.url.rsplit(':').next().unwrap().trim_end_matches("/0").parse().unwrap();
    let store = quorum::state::RedisStore::connect(&server.url).await.unwrap();
    store.set("before", b"v", SetOptions::default()).await.unwrap();
    drop(server);
    // While the server is down, commands fail with an error rather than hanging forever.
    let down = tokio::time::timeout(Duration::from_secs(30), store.get("before")).await.expect("no hang");
    assert!(down.is_err());
    let _restarted = crate::support::RedisServer::start_on(port);
    let mut reconnected = false;
    for _ in 0..100 {
        if store.set("after", b"w", SetOptions::default()).await.is_ok() {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reconnected, "the connection manager reconnected");
    assert_eq!(store.get("after").await.unwrap().as_deref(), Some(&b"w"[..]));
}
