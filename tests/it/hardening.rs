//! Issue 19: requests, keys, origins and faults that must not take the server down or
//! let anyone in, each test named after the failure it guards against. Real server, real
//! llama.cpp with SmolLM2-135M.

use std::time::Duration;

use quorum::api::{self, Access, AppState};
use quorum::engine::Engine;
use quorum::models::resolve;
use quorum::tools::{Tools, Workspace};
use serde_json::{json, Value};

use super::support::{repo_tools, smollm_config, temp_tasks};

/// A served AppState with the models loaded; returns its URL and the state.
async fn serve(access: Access, tools: Tools) -> (String, AppState, tempfile::TempDir) {
    let config = smollm_config();
    let (tasks, dir) = temp_tasks().await;
    let options = quorum::pipeline::PipelineOptions::default()
        .with(&json!({"max_rounds": 1, "replans": 0, "candidates": 2, "probes": 0}))
        .unwrap();
    let setup = quorum::pipeline::Setup { options, ..Default::default() };
    let state = AppState::new(&config.profile, tasks, tools, setup);
    let files = resolve(&config.profile, &config.models_dir).unwrap();
    let loader = state.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Engine::load(&files, &config.profile, &config.engine, &|e| loader.on_load_event(&e)).unwrap()
    })
    .await
    .unwrap();
    state.set_engine(engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve_with(listener, state.clone(), access, std::future::pending()));
    (url, state, dir)
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "planner", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let res = client.post(url).json(body).timeout(Duration::from_secs(60)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn grammar_and_schema_bombs_are_refused_naming_their_field() {
    let (url, _state, _dir) = serve(Access::default(), repo_tools()).await;
    let client = reqwest::Client::new();
    let chat_url = format!("{url}/v1/chat/completions");
    let schema =
        |s: Value| json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": s}}});
    let deep = format!("root ::= {}\"a\"{}", "(".repeat(10_000), ")".repeat(10_000));
    // A chain of 4,000 `$ref`s overflowed the converter's stack and aborted the process; the
    // nested counted repetitions held the model's worker on its first token.
    let mut defs: serde_json::Map<String, Value> =
        (0..4000).map(|i| (format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}))).collect();
    defs.insert("d4000".into(), json!({"type": "string"}));
    let chain = json!({"$defs": defs, "$ref": "#/$defs/d0"});
    let cases = [
        (schema(chain), "response_format", "counting the $refs followed"),
        (
            schema(json!({"type": "string", "pattern": "^((a{0,50}){0,50}){0,50}$"})),
            "response_format",
            "combinations of counts",
        ),
        (json!({"grammar": "root ::= ((\"a\"{0,50}){0,50}){0,50}"}), "grammar", "combinations of counts"),
        (json!({"grammar": "root ::= x{0,2000}\nx ::= y{0,2000}\ny ::= \"a\"{0,2000}"}), "grammar", "combinations"),
        (
            schema(json!({"type": "array", "minItems": 5, "maxItems": 2})),
            "response_format",
            "minItems (5) is greater than maxItems (2)",
        ),
        (schema(json!({"type": "string", "minLength": 9, "maxLength": 3})), "response_format", "minLength"),
        (schema(json!({"type": "array", "maxItems": 1_000_000_000u64})), "response_format", "at most 2000"),
        (json!({"grammar": "root ::= \"a\"{5,2}"}), "grammar", "{5,2}"),
        (json!({"grammar": deep}), "grammar", "nested deeper than 64"),
        (json!({"grammar": "root ::= \"a\"{1000}{1000}"}), "grammar", "expands to more than"),
        (json!({"grammar": "root ::= undefined-rule"}), "grammar", "invalid grammar"),
        (json!({"grammar": "root ::= (\"a\""}), "grammar", "expecting `)`"),
    ];
    for (extra, param, words) in cases {
        let (status, body) = post(&client, &chat_url, &chat(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"]["param"], param, "{extra}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{extra}: {message}");
    }
    // The server still answers, and a sane schema still constrains the output.
    let (status, body) = post(
        &client,
        &chat_url,
        &chat(schema(json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn request_limits_answer_in_openai_shape() {
    let (url, _state, _dir) = serve(Access::new(&[], &[], 64 * 1024), repo_tools()).await;
    let client = reqwest::Client::new();
    let chat_url = format!("{url}/v1/chat/completions");
    let big = "x".repeat(100 * 1024);
    let (status, body) = post(&client, &chat_url, &chat(json!({"messages": [{"role": "user", "content": big}]}))).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "request_too_large");
    let (status, body) =
        post(&client, &format!("{url}/api/mcp/tool"), &json!({"name": "read_file", "arguments": {"path": big}})).await;
    assert_eq!(status, 413, "{body}");
    // /mcp reads its body itself; the limit holds there too.
    let res = client
        .post(format!("{url}/mcp"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = client.get(&chat_url).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let limits = [
        (json!({"stop": vec!["s"; 17]}), "stop"),
        (json!({"stop": ["s".repeat(300)]}), "stop"),
        (json!({"max_tokens": 1_000_000}), "max_tokens"),
        (json!({"n": 1_000_000}), "n"),
        (json!({"n": 200}), "n"),
        (json!({"temperature": 9}), "temperature"),
    ];
    for (extra, param) in limits {
        let (status, body) = post(&client, &chat_url, &chat(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"]["param"], param, "{extra}: {body}");
    }
    // 16 stop strings are allowed (Continue sends up to 9).
    let (status, body) = post(&client, &chat_url, &chat(json!({"stop": vec!["zz"; 16]}))).await;
    assert_eq!(status, 200, "{body}");

    // Anthropic's routes answer these in Anthropic's shape.
    let messages = json!({"model": "planner", "max_tokens": 4, "messages": [{"role": "user", "content": big}]});
    let (status, body) = post(&client, &format!("{url}/v1/messages"), &messages).await;
    assert_eq!((status, &body["type"], &body["error"]["type"]), (413, &json!("error"), &json!("request_too_large")));
    let res = client.get(format!("{url}/v1/messages")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.json::<Value>().await.unwrap()["type"], "error");
    let (status, body) = post(&client, &format!("{url}/v1/messages/xyz"), &json!({})).await;
    assert_eq!((status, &body["error"]["type"]), (404, &json!("not_found_error")), "{body}");
}

#[tokio::test]
async fn mcp_sessions_are_bounded_and_its_errors_are_json_rpc() {
    let (url, _state, _dir) = serve(Access::default(), repo_tools()).await;
    let client = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mcp = || client.post(format!("{url}/mcp")).header("accept", "application/json, text/event-stream");
    // What rmcp cannot read (a batch, which this protocol version dropped; not JSON).
    for body in [r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, "hello"] {
        let res = mcp().header("content-type", "application/json").body(body).send().await.unwrap();
        assert!(res.status().is_client_error(), "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["jsonrpc"], "2.0", "{body}: {answer}");
    }
    let res = mcp().header("mcp-session-id", "no-such-session").json(&init).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["jsonrpc"], "2.0");
    let mut ids = Vec::new();
    for _ in 0..quorum::tools::mcp::MAX_SESSIONS {
        let res = mcp().json(&init).send().await.unwrap();
        assert_eq!(res.status(), 200);
        ids.push(res.headers()["mcp-session-id"].to_str().unwrap().to_string());
    }
    let res = mcp().json(&init).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "60");
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("sessions are open"));
    // Closing one makes room.
    let closed = client.delete(format!("{url}/mcp")).header("mcp-session-id", &ids[0]).send().await.unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    assert_eq!(mcp().json(&init).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn without_a_key_every_route_but_health_is_401() {
    let keys = ["first-key".to_string(), "second-key".to_string()];
    let (url, _state, _dir) = serve(Access::new(&keys, &[], api::DEFAULT_BODY_LIMIT), repo_tools()).await;
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{url}/health")).send().await.unwrap().status(), 200);
    for path in ["/v1/models", "/api/tasks", "/api/mcp/tools", "/metrics"] {
        let res = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key", "{path}");
        let res = client.get(format!("{url}{path}")).bearer_auth("wrong-key").send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        let res = client.get(format!("{url}{path}")).bearer_auth("second-key").send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let res = client.get(format!("{url}{path}")).header("x-api-key", "first-key").send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mcp = |key: Option<&str>| {
        let mut req =
            client.post(format!("{url}/mcp")).header("accept", "application/json, text/event-stream").json(&init);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send()
    };
    let res = mcp(None).await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "MCP clients get JSON-RPC's error shape: {body}");
    assert_eq!(mcp(Some("first-key")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_route() {
    let origins = ["http://ide.example:3000".to_string()];
    let (url, _state, _dir) = serve(Access::new(&[], &origins, api::DEFAULT_BODY_LIMIT), repo_tools()).await;
    let client = reqwest::Client::new();
    for path in ["/v1/models", "/api/tasks", "/api/mcp/tools", "/health"] {
        let res = client.get(format!("{url}{path}")).header("origin", "http://evil.example").send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed", "{path}");
        for origin in ["http://localhost:5173", "http://ide.example:3000"] {
            let res = client.get(format!("{url}{path}")).header("origin", origin).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path} from {origin}");
        }
    }
}

#[tokio::test]
async fn a_model_worker_that_panics_is_restarted_and_others_keep_serving() {
    let (url, state, _dir) = serve(Access::default(), repo_tools()).await;
    let client = reqwest::Client::new();
    let chat_url = format!("{url}/v1/chat/completions");
    // Every role shares the one SmolLM worker here; the fault is injected into it.
    let coder = state.role("coder").unwrap();
    coder.inject_fault();
    let res = client.post(&chat_url).json(&chat(json!({"model": "coder"}))).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_recovering", "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health: Value = client.get(format!("{url}/health")).send().await.unwrap().json().await.unwrap();
        if health["roles"]["coder"]["state"] == "ready" && health["roles"]["coder"]["restarts"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the worker never came back: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = post(&client, &chat_url, &chat(json!({"model": "coder"}))).await;
    assert_eq!(status, 200, "{body}");
    let metrics = client.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("quorum_worker_restarts_total{model=\"smollm2-135m-instruct-q4_1.gguf\"} 1"), "{metrics}");
}

/// A one-file Python repository for pipeline tasks.
fn small_repo() -> (tempfile::TempDir, Tools) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(root)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    let tools = Tools::new(Workspace::new(root).unwrap());
    (dir, tools)
}

async fn wait_status(client: &reqwest::Client, url: &str, id: &str, want: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let task: Value = client.get(format!("{url}/api/task/{id}")).send().await.unwrap().json().await.unwrap();
        if task["status"] == want || std::time::Instant::now() >= deadline {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_task_can_be_cancelled_and_its_generation_stops() {
    let (_repo, tools) = small_repo();
    let (url, state, _dir) = serve(Access::default(), tools).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{url}/api/workflow"))
        .json(&json!({"task": "Fix add() in calc.py: it subtracts"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut events = res.bytes_stream();
    use futures::StreamExt;
    let first = String::from_utf8(events.next().await.unwrap().unwrap().to_vec()).unwrap();
    let id = first.split("\"id\":\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // Wait until a model is generating for it, then cancel.
    let planner = state.role("planner").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while planner.metrics().running == 0 {
        assert!(std::time::Instant::now() < deadline, "the task never reached a model");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = post(&client, &format!("{url}/api/task/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while planner.metrics().running > 0 {
        assert!(std::time::Instant::now() < deadline, "the task's sequences kept running after the cancel");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let task = wait_status(&client, &url, &id, "cancelled", 5).await;
    assert_eq!(task["status"], "cancelled");
    assert_eq!(task["events"].as_array().unwrap().last().unwrap()["kind"], "finished");
    let (status, body) = post(&client, &format!("{url}/api/task/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = post(&client, &format!("{url}/api/task/no-such-task/cancel"), &json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_chat_client_that_goes_away_cancels_its_task_unless_detached() {
    let (_repo, tools) = small_repo();
    let (url, _state, _dir) = serve(Access::default(), tools).await;
    let client = reqwest::Client::new();
    let ask = |stream: bool, detach: bool| {
        client
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "quorum", "stream": stream, "options": {"detach": detach},
                          "messages": [{"role": "user", "content": "Fix add() in calc.py: it subtracts instead of adding"}]}))
            .send()
    };
    // Streamed, the client goes after the headers; not streamed, while it waits for the answer.
    let mut earlier: Vec<String> = Vec::new();
    for (stream, detach) in [(true, false), (true, true), (false, false)] {
        let mut request = tokio::spawn(ask(stream, detach));
        let response = if stream { Some((&mut request).await.unwrap().unwrap()) } else { None };
        if let Some(res) = response {
            assert_eq!(res.status(), 200);
        }
        // The newest task is this one.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let task = loop {
            let list: Value =
                client.get(format!("{url}/api/tasks?limit=1")).send().await.unwrap().json().await.unwrap();
            let new = |t: &&Value| t["status"] != "queued" && !earlier.iter().any(|id| t["id"] == id.as_str());
            if let Some(task) = list["tasks"].get(0).filter(new) {
                break task.clone();
            }
            assert!(std::time::Instant::now() < deadline, "no task started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let id = task["id"].as_str().unwrap();
        earlier.push(id.to_string());
        if !stream {
            let ended = ["succeeded", "failed", "cancelled", "interrupted"].iter().any(|s| task["status"] == *s);
            assert!(!ended, "the answer is still being made: {task}");
            request.abort();
        }
        let after = wait_status(&client, &url, id, "cancelled", 15).await;
        if detach {
            assert_ne!(after["status"], "cancelled", "a detached task runs on");
            let (status, _) = post(&client, &format!("{url}/api/task/{id}/cancel"), &json!({})).await;
            assert!(status == 200 || status == 409);
        } else {
            assert_eq!(after["status"], "cancelled", "stream: {stream}: {after}");
        }
    }
}
