//! Property tests over the request parsers: any JSON body, shaped like the requests
//! clients send, is parsed and validated into a value or an OpenAI error, never a panic;
//! what validation lets through stays inside the documented limits.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::types::{ChatRequest, CompletionRequest, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES, MAX_TOKENS};

const FIELDS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "ignore_eos",
    "grammar",
    "response_format",
    "options",
    "role",
    "content",
    "type",
    "text",
    "include_usage",
    "json_schema",
    "schema",
];

/// Scalars at the edges of what the fields take.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(&[0i64, 1, -1, 2, 256, 257, 32_768, 32_769, i64::MAX, i64::MIN][..]).prop_map(Value::from),
        prop::sample::select(&[0.0f64, 0.5, 1.0, 2.0, 2.5, -0.1, 1e308][..]).prop_map(Value::from),
        prop::sample::select(
            &[
                "",
                "user",
                "system",
                "developer",
                "text",
                "image_url",
                "json_schema",
                "json_object",
                "planner",
                "quorum",
                "root ::= \"a\""
            ][..]
        )
        .prop_map(Value::from),
        (0usize..400).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

/// JSON objects whose keys are the requests' own field names.
fn body() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

/// A valid chat body with some of its fields replaced.
fn chat_body() -> impl Strategy<Value = Value> {
    (prop::collection::vec((prop::sample::select(FIELDS), body()), 0..5)).prop_map(|changes| {
        let mut chat = json!({"model": "planner", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in changes {
            chat[k] = v;
        }
        chat
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

#[test]
fn chat_requests_validate_or_refuse() {
    // How far each body got: parsed, messages valid, sampling valid.
    let reached = std::cell::Cell::new([0u32; 3]);
    let count = |i: usize| {
        let mut r = reached.get();
        r[i] += 1;
        reached.set(r);
    };
    proptest!(ProptestConfig::with_cases(3000), |(value in prop_oneof![body(), chat_body()])| {
        let Ok(mut req) = serde_json::from_value::<ChatRequest>(value) else { return Ok(()) };
        count(0);
        if let Ok(messages) = req.messages() {
            count(1);
            prop_assert!(!messages.is_empty() && messages.len() <= MAX_MESSAGES);
        }
        if let Ok(n) = req.options.n() {
            prop_assert!((1..=256).contains(&n));
        }
        if let Ok(sampling) = req.options.sampling() {
            count(2);
            prop_assert!(sampling.stop.len() <= MAX_STOP && sampling.stop.iter().all(|s| s.len() <= MAX_STOP_BYTES));
            prop_assert!(sampling.max_tokens.is_none_or(|m| (1..=MAX_TOKENS).contains(&m)));
            prop_assert!(sampling.temperature.is_none_or(|t| (0.0..=2.0).contains(&t)));
        }
        let _ = runtime().block_on(req.options.grammar());
    });
    // The generator reaches validation, not only the JSON decoder.
    let [parsed, messages, sampling] = reached.get();
    assert!(
        parsed > 300 && messages > 200 && sampling > 200,
        "{parsed} parsed, {messages} with valid messages, {sampling} valid sampling"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn completion_requests_validate_or_refuse(value in body(), prompt in body()) {
        let mut value = value;
        if let Value::Object(map) = &mut value {
            map.insert("prompt".into(), prompt);
        }
        let Ok(mut req) = serde_json::from_value::<CompletionRequest>(value) else { return Ok(()) };
        let _ = req.prompt();
        let _ = req.options.sampling();
    }
}
