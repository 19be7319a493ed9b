//! Property tests (proptest) over the grammar and schema checks that stand before
//! llama.cpp: they end on any input, and what they accept llama.cpp builds quickly.
//! CI runs the fixed case counts below; `PROPTEST_CASES=100000` runs longer. A failure is
//! shrunk and saved under `proptest-regressions/`, which is committed as the regression corpus.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use quorum::engine::{check_grammar, check_schema, json_schema_grammar, GrammarLimits};
use serde_json::{json, Value};

/// GBNF's own pieces, valid and broken, including the expansions issue 19 found.
const PIECES: &[&str] = &[
    "\"a\"",
    "\"bc\"",
    "[a-z]",
    "[^\\n]",
    ".",
    "x",
    "root",
    "(",
    ")",
    "|",
    "*",
    "+",
    "?",
    "{2}",
    "{0,3}",
    "{1,}",
    "{5,2}",
    "{3000}",
    "{0,2000}",
    " ",
    "\n",
    "\n  ",
    "# c\n",
    "\"\\x41\"",
    "\"\\u00e9\"",
    "\"",
    "[",
    "]",
    "<",
    ">",
    "::=",
    "\"é\"",
    "{",
    "}",
    ",",
    "\\",
];

fn pieces(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..max).prop_map(|p| p.concat())
}

/// A grammar: mostly well-formed rules with random pieces, sometimes a second rule.
fn grammar() -> impl Strategy<Value = String> {
    (pieces(40), prop::option::of(pieces(10))).prop_map(|(root, x)| match x {
        Some(x) => format!("root ::= {root}\nx ::= {x}"),
        None => format!("root ::= {root}"),
    })
}

fn bound() -> impl Strategy<Value = u64> {
    prop::sample::select(&[0u64, 1, 2, 5, 2000, 3000, 1_000_000][..])
}

/// A JSON schema with the keywords that expand, nested.
fn schema() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({"type": "string"})),
        (bound(), bound()).prop_map(|(a, b)| json!({"type": "string", "minLength": a, "maxLength": b})),
        prop::sample::select(&["^a+$", "a{2,5}", "a{5,2}", "(ab|c)*", "[0-9]{3}"][..])
            .prop_map(|p| json!({"type": "string", "pattern": p})),
        bound().prop_map(|n| json!({"type": "integer", "minimum": 0, "maximum": n})),
    ];
    leaf.prop_recursive(5, 64, 2, |inner| {
        prop_oneof![
            (inner.clone(), bound(), bound())
                .prop_map(|(items, a, b)| json!({"type": "array", "items": items, "minItems": a, "maxItems": b})),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| json!({"type": "object", "properties": {"a": a, "b": b}, "required": ["a"]})),
            prop::collection::vec(inner, 1..3).prop_map(|any| json!({"anyOf": any})),
        ]
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, source_file: Some(file!()), ..Config::default() })
}

#[test]
fn the_grammar_check_ends_on_any_input_and_both_outcomes_occur() {
    let limits = GrammarLimits::default();
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    proptest!(Config::with_cases(4000), |(g in grammar())| {
        match check_grammar(&g, &limits) {
            Ok(()) => accepted.set(accepted.get() + 1),
            Err(_) => refused.set(refused.get() + 1),
        }
    });
    // The generator is not degenerate: it reaches both sides of the check.
    assert!(accepted.get() > 50 && refused.get() > 500, "{} accepted, {} refused", accepted.get(), refused.get());
}

proptest! {
    #![proptest_config(Config::with_cases(4000))]

    #[test]
    fn the_grammar_check_ends_on_arbitrary_text(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let limits = GrammarLimits::default();
        let _ = check_grammar(&text, &limits);
        let _ = check_grammar(&String::from_utf8_lossy(&bytes), &limits);
        let _ = check_grammar(&format!("root ::= {text}"), &limits);
    }

    #[test]
    fn the_schema_check_ends_and_what_it_accepts_converts(s in schema()) {
        let limits = GrammarLimits::default();
        if check_schema(&s, &limits).is_ok() {
            // llama.cpp's converter either refuses or gives a grammar; both return.
            let _ = json_schema_grammar(&s.to_string());
        }
    }
}

#[test]
fn every_grammar_the_checks_accept_compiles_in_llama_cpp() {
    use quorum::engine::{Engine, EngineError, GenerateRequest, Prompt, SamplingParams};
    let config = super::support::smollm_config();
    let files = quorum::models::resolve(&config.profile, &config.models_dir).unwrap();
    let engine = Engine::load(&files, &config.profile, &config.engine, &|_| {}).unwrap();
    let handle = engine.role(quorum::models::Role::Voter).unwrap().clone();
    let limits = GrammarLimits::default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (compiled, refused_by_llama) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let source = prop_oneof![2 => grammar(), 1 => schema().prop_filter_map("not convertible", |s| json_schema_grammar(&s.to_string()).ok())];
    runner(300)
        .run(&source, |grammar| {
            if check_grammar(&grammar, &limits).is_err() {
                return Ok(());
            }
            let sampling = SamplingParams {
                max_tokens: Some(1),
                temperature: Some(0.0),
                grammar: Some(grammar.clone()),
                ..Default::default()
            };
            let started = Instant::now();
            match handle.submit(GenerateRequest { prompt: Prompt::Text("a".into()), sampling, n: 1 }) {
                Ok(generation) => {
                    compiled.set(compiled.get() + 1);
                    // Finished before the next, so that other tests' requests find room in the queue.
                    let _ = rt.block_on(generation.collect());
                }
                Err(EngineError::Grammar(_)) => refused_by_llama.set(refused_by_llama.get() + 1),
                Err(e) => return Err(TestCaseError::fail(format!("{grammar}: {e}"))),
            }
            // What the checks accept is cheap for llama.cpp to build (the bound is generous
            // for a loaded machine; a runaway expansion takes minutes).
            prop_assert!(started.elapsed() < Duration::from_secs(20), "{grammar}");
            Ok(())
        })
        .unwrap();
    assert!(compiled.get() > 20, "{} compiled, {} refused by llama.cpp", compiled.get(), refused_by_llama.get());
}
