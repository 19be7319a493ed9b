//! HTTP behaviour that the Python client tests do not reach: `/health` while loading and
//! back-pressure (429). The Python tests (`tests/python`) drive the rest with the
//! official `openai` SDK.

use std::time::Duration;

use quorum::api::{self, AppState};
use quorum::engine::Engine;
use quorum::models::resolve;
use serde_json::{json, Value};

use super::support::{repo_tools, smollm_config, temp_tasks};

async fn start(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(api::serve(listener, state, std::future::pending()));
    format!("http://{addr}")
}

#[tokio::test]
async fn health_is_503_and_requests_wait_while_models_load() {
    let config = smollm_config();
    let (tasks, _dir) = temp_tasks().await;
    let state = AppState::new(&config.profile, tasks, repo_tools(), Default::default());
    let url = start(state.clone()).await;
    let client = reqwest::Client::new();

    let res = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "loading");
    assert_eq!(body["roles"]["coder"]["state"], "waiting");

    let res = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "coder", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_loading");

    let files = resolve(&config.profile, &config.models_dir).unwrap();
    let loader = state.clone();
    let engine = tokio::task::spawn_blocking(move || {
        Engine::load(&files, &config.profile, &config.engine, &|e| loader.on_load_event(&e)).unwrap()
    })
    .await
    .unwrap();
    state.set_engine(engine);
    let res = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    for role in ["preprocessor", "planner", "coder", "voter", "reviewer"] {
        assert_eq!(body["roles"][role]["state"], "ready", "{role}");
        assert_eq!(body["roles"][role]["model"], "smollm2-135m-instruct-q4_1.gguf");
    }
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let mut config = smollm_config();
    config.profile.roles.values_mut().for_each(|spec| spec.parallel = 1);
    config.engine.queue = 1;
    let (tasks, _dir) = temp_tasks().await;
    let state = AppState::new(&config.profile, tasks, repo_tools(), Default::default());
    let files = resolve(&config.profile, &config.models_dir).unwrap();
    let engine = Engine::load(&files, &config.profile, &config.engine, &|_| {}).unwrap();
    state.set_engine(engine);
    let url = start(state).await;
    let client = reqwest::Client::new();
    let request = json!({
        "model": "coder", "stream": true, "max_tokens": 64, "temperature": 0,
        "messages": [{"role": "user", "content": "Write a poem."}],
    });
    let sends = (0..12).map(|_| client.post(format!("{url}/v1/chat/completions")).json(&request).send());
    let responses = futures::future::join_all(sends).await;
    let mut limited = 0;
    for res in responses {
        let res = res.unwrap();
        if res.status() == 429 {
            limited += 1;
            assert_eq!(res.headers()["retry-after"], "1");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["type"], "rate_limit_error");
        } else {
            assert_eq!(res.status(), 200);
            let text = tokio::time::timeout(Duration::from_secs(60), res.text()).await.unwrap().unwrap();
            assert!(text.trim_end().ends_with("data: [DONE]"));
        }
    }
    assert!(limited > 0, "12 requests at once cannot fit 5 sequences, one waiting and one queued");
}
