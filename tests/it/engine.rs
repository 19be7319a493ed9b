//! The engine on the real llama.cpp with SmolLM2-135M.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quorum::config::Config;
use quorum::engine::{ChatMessage, Engine, EngineError, Event, FinishReason, GenerateRequest, Prompt, SamplingParams};
use quorum::models::{resolve, Role};

use super::support::smollm_config;

/// One engine for the module's tests (loading is cheap, but each load maps the file anew).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| load(&smollm_config()))
}

fn load(config: &Config) -> Engine {
    let files = resolve(&config.profile, &config.models_dir).unwrap();
    Engine::load(&files, &config.profile, &config.engine, &|_| {}).unwrap()
}

fn chat(text: &str, sampling: SamplingParams, n: u32) -> GenerateRequest {
    let messages = vec![ChatMessage::new("user", text)];
    GenerateRequest { prompt: Prompt::Chat(messages), sampling, n }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams { temperature: Some(0.0), max_tokens: Some(max_tokens), ..Default::default() }
}

/// Outputs depend on which sequences share a batch and where their KV cells lie, so tests
/// that generate on the shared engine (one context for all roles) take turns. Async tests
/// hold the guard across awaits: each runs on its own runtime and thread, so no task of
/// theirs waits for it.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(role: Role, req: GenerateRequest) -> Vec<quorum::engine::Completion> {
    let handle = engine().role(role).unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move { handle.submit(req)?.collect().await }).unwrap()
}

#[test]
fn one_file_for_five_roles_is_loaded_once() {
    let engine = engine();
    assert_eq!(engine.models().len(), 1);
    assert_eq!(engine.models()[0].roles.len(), 5);
    for role in Role::ALL {
        assert!(engine.role(role).is_some(), "{role} has a handle");
    }
}

#[test]
fn greedy_is_deterministic_and_max_tokens_is_honoured() {
    let _serial = serial();
    let a = run(Role::Coder, chat("Count from one to twenty in words.", greedy(12), 1));
    let b = run(Role::Coder, chat("Count from one to twenty in words.", greedy(12), 1));
    assert_eq!(a, b);
    assert_eq!(a[0].completion_tokens, 12);
    assert_eq!(a[0].finish, Some(FinishReason::Length));
    assert!(!a[0].text.is_empty());
}

#[test]
fn forked_samples_match_the_single_stream_under_greedy() {
    let _serial = serial();
    let single = run(Role::Planner, chat("Name three colors.", greedy(16), 1));
    let before = engine().role(Role::Planner).unwrap().metrics();
    let forked = run(Role::Planner, chat("Name three colors.", greedy(16), 3));
    let after = engine().role(Role::Planner).unwrap().metrics();
    assert_eq!(forked.len(), 3);
    for choice in &forked {
        assert_eq!(choice.text, single[0].text);
    }
    // Greedy samples never draw differently, so two of three ride on the first's row.
    let drawn = after.generated_tokens - before.generated_tokens;
    assert!(drawn >= 3 * u64::from(forked[0].completion_tokens));
    assert_eq!((after.shared_tokens - before.shared_tokens) * 3, drawn * 2);
}

#[test]
fn seeds_make_sampling_repeatable_and_choices_differ() {
    let _serial = serial();
    let sampling = |seed| SamplingParams {
        temperature: Some(1.0),
        top_p: Some(1.0),
        max_tokens: Some(24),
        seed: Some(seed),
        ..Default::default()
    };
    let a = run(Role::Voter, chat("Tell me a story about a fox.", sampling(42), 2));
    let b = run(Role::Voter, chat("Tell me a story about a fox.", sampling(42), 2));
    assert_eq!(a, b, "same seed, same samples");
    assert_ne!(a[0].text, a[1].text, "each choice gets its own seed");
}

#[test]
fn a_stop_string_ends_the_text_right_before_it() {
    let _serial = serial();
    let full = run(Role::Coder, chat("Count from one to twenty in words.", greedy(24), 1)).remove(0);
    // A piece from the middle of the answer (whatever its words): the cut ends right before
    // the piece's first occurrence.
    let chars: Vec<char> = full.text.chars().collect();
    assert!(chars.len() > 12, "need some text to cut: {:?}", full.text);
    let stop: String = chars[8..11].iter().collect();
    let at = full.text.find(&stop).unwrap();
    let mut sampling = greedy(24);
    sampling.stop = vec![stop];
    let cut = run(Role::Coder, chat("Count from one to twenty in words.", sampling, 1)).remove(0);
    assert_eq!(cut.text, full.text[..at]);
    assert_eq!(cut.finish, Some(FinishReason::StopString(0)));
}

#[test]
fn end_of_generation_stops_a_short_answer() {
    let _serial = serial();
    let out = run(Role::Reviewer, chat("Answer with one word: what color is the sky?", greedy(200), 1)).remove(0);
    assert_eq!(out.finish, Some(FinishReason::Stop), "{:?}", out.text);
    assert!(out.completion_tokens < 200);
}

#[test]
fn multibyte_text_streams_without_broken_characters() {
    let _serial = serial();
    let out = run(Role::Coder, chat("Repeat exactly: café naïve 日本語 ✓", greedy(24), 1)).remove(0);
    assert!(!out.text.contains('\u{FFFD}'), "{:?}", out.text);
    assert!(!out.text.is_ascii(), "expected non-ASCII text back: {:?}", out.text);
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let handle = engine().role(Role::Coder).unwrap();
    let long = "word ".repeat(handle.context_size() as usize + 10);
    let err = handle.submit(chat(&long, greedy(8), 1)).unwrap_err();
    assert!(matches!(err, EngineError::ContextLength { .. }), "{err}");
    assert!(err.to_string().contains("maximum context length"));
    let err = handle.submit(GenerateRequest { prompt: Prompt::Text(String::new()), sampling: greedy(4), n: 1 });
    assert!(matches!(err, Err(EngineError::InvalidPrompt(_))));
}

#[test]
fn dropping_a_generation_frees_its_sequence() {
    let _serial = serial();
    let handle = engine().role(Role::Preprocessor).unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut generation = handle.submit(chat("Write a long essay about the sea.", greedy(2000), 1)).unwrap();
        assert!(matches!(generation.events.recv().await, Some(Event::Text { .. })));
        assert_eq!(handle.metrics().running, 1);
        drop(generation);
        let deadline = Instant::now() + Duration::from_secs(10);
        while handle.metrics().running != 0 {
            assert!(Instant::now() < deadline, "sequence still running after its caller left");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_deadline_ends_the_choices_still_running_with_their_text_so_far() {
    let _serial = serial();
    let handle = engine().role(Role::Coder).unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let request = chat("Write a long essay about the sea.", greedy(4000), 2);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        let done = handle.submit(request).unwrap().collect_until(Some(deadline)).await.unwrap();
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(5), "returned at the deadline");
        assert_eq!(done.len(), 2);
        for choice in &done {
            assert_eq!(choice.finish, None, "still running at the deadline");
            assert!(!choice.text.is_empty(), "its text so far is kept");
        }
        let freed = Instant::now() + Duration::from_secs(10);
        while handle.metrics().running != 0 {
            assert!(Instant::now() < freed, "sequences still running after the deadline");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn a_full_queue_refuses_instead_of_growing() {
    let mut config = smollm_config();
    config.profile.roles.values_mut().for_each(|spec| spec.parallel = 1);
    config.engine.queue = 1;
    let engine = load(&config);
    let handle = engine.role(Role::Coder).unwrap().clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut accepted = Vec::new();
        let mut refused = 0;
        for _ in 0..12 {
            match handle.submit(chat("Say hello.", greedy(8), 1)) {
                Ok(g) => accepted.push(g),
                Err(EngineError::Overloaded(Role::Coder)) => refused += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert!(refused > 0, "5 sequences, one waiting and a queue of 1 cannot take 12 requests");
        for g in accepted {
            let out = g.collect().await.unwrap();
            assert!(out[0].completion_tokens > 0);
        }
    });
}

#[test]
fn a_gguf_without_a_chat_template_uses_the_named_builtin() {
    use quorum::config::{ConfigFile, Overrides};
    let gemma = super::support::repo_root().join("models/gemma-3-270m-q4_k_m.gguf");
    assert!(gemma.exists(), "{} is missing: run scripts/fetch-small-models.sh", gemma.display());
    let with_template = |template: Option<&str>| {
        let overrides = Overrides { models: vec![format!("all={}", gemma.display())], ..Default::default() };
        let mut config = Config::resolve(ConfigFile::default(), overrides).unwrap();
        for spec in config.profile.roles.values_mut() {
            spec.chat_template = template.map(Into::into);
        }
        config
    };
    let messages = vec![ChatMessage::new("user", "Hello")];

    let engine = load(&with_template(Some("gemma")));
    let handle = engine.role(Role::Preprocessor).unwrap();
    let prompt = handle.format_chat(&messages).unwrap();
    assert!(prompt.contains("<start_of_turn>user\nHello<end_of_turn>"), "{prompt:?}");
    assert!(prompt.ends_with("<start_of_turn>model\n"), "{prompt:?}");

    let engine = load(&with_template(None));
    let err = engine.role(Role::Preprocessor).unwrap().format_chat(&messages).unwrap_err();
    assert!(matches!(err, EngineError::NoChatTemplate), "{err}");
    assert!(err.to_string().contains("chat_template"));
}

/// An engine whose greedy outputs do not depend on what runs beside them: flash attention
/// off and a KV stream per sequence. (In the default unified pool, cells of concurrent
/// sequences interleave, which changes floating-point summation order: measured here,
/// one of five answers diverged after a few tokens.)
fn exact_engine(prompt_cache: bool) -> Engine {
    let mut config = smollm_config();
    config.engine.flash_attention = false;
    config.engine.kv_unified = false;
    config.engine.prompt_cache = prompt_cache;
    for (role, spec) in config.profile.roles.iter_mut() {
        spec.context = 1024;
        spec.parallel = if matches!(role, Role::Coder) { 5 } else { 1 };
    }
    load(&config)
}

fn collect_all(handle: &quorum::engine::RoleHandle, requests: Vec<GenerateRequest>) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let generations: Vec<_> = requests.into_iter().map(|r| handle.submit(r).unwrap()).collect();
        let mut out = Vec::new();
        for g in generations {
            out.push(g.collect().await.unwrap().remove(0).text);
        }
        out
    })
}

const QUESTIONS: [&str; 5] = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves falling.",
    "List three prime numbers.",
    "Explain recursion in one sentence.",
    "What does HTTP stand for?",
];

#[test]
fn concurrent_greedy_requests_match_each_alone() {
    let engine = exact_engine(false);
    let handle = engine.role(Role::Coder).unwrap();
    let alone: Vec<String> =
        QUESTIONS.iter().map(|q| collect_all(handle, vec![chat(q, greedy(24), 1)]).remove(0)).collect();
    let together = collect_all(handle, QUESTIONS.iter().map(|q| chat(q, greedy(24), 1)).collect());
    assert_eq!(together, alone);
    let m = handle.metrics();
    assert!(m.decode_steps > 0);
    assert!(m.decode_nanos > 0 && m.sample_nanos > 0, "where the steps' time went: {m:?}");
}

/// Each sample of a fork shares the first one's decode until it draws another token, then
/// continues on a copy of that KV. If the copy were wrong (too short, from the wrong
/// sequence, made too late) its text would differ from the same seed run alone.
#[test]
fn each_sample_of_a_fork_matches_its_seed_run_alone() {
    let engine = exact_engine(false);
    let handle = engine.role(Role::Coder).unwrap();
    let sampling =
        |seed| SamplingParams { temperature: Some(0.8), max_tokens: Some(32), seed: Some(seed), ..Default::default() };
    let ask = "Write a Python function that returns the largest of three numbers.";
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let forked = rt.block_on(async { handle.submit(chat(ask, sampling(7), 4))?.collect().await }).unwrap();
    let texts: Vec<&str> = forked.iter().map(|c| c.text.as_str()).collect();
    let m = handle.metrics();
    assert!(m.shared_tokens > 0, "the samples shared no token: {texts:?}");
    let distinct: std::collections::HashSet<_> = texts.iter().collect();
    assert!(distinct.len() > 1, "the samples never parted, so nothing was copied: {texts:?}");
    for (i, text) in texts.iter().enumerate() {
        let alone = collect_all(handle, vec![chat(ask, sampling(7 + i as u32), 1)]).remove(0);
        assert_eq!(*text, alone, "sample {i}");
    }
}

/// `q` under a system prompt of more than 60 tokens that every question shares, greedy.
fn ask(q: &str) -> GenerateRequest {
    let system = "You are a meticulous assistant. Answer briefly and precisely. ".repeat(6);
    GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage::new("system", system), ChatMessage::new("user", q)]),
        sampling: greedy(24),
        n: 1,
    }
}

#[test]
fn the_prompt_cache_changes_speed_not_tokens() {
    let cached = exact_engine(true);
    let plain = exact_engine(false);
    let (c, p) = (cached.role(Role::Planner).unwrap(), plain.role(Role::Planner).unwrap());
    let mut with_cache = Vec::new();
    let mut without = Vec::new();
    for q in QUESTIONS {
        with_cache.push(collect_all(c, vec![ask(q)]).remove(0));
        without.push(collect_all(p, vec![ask(q)]).remove(0));
    }
    assert_eq!(with_cache, without);
    let (mc, mp) = (c.metrics(), p.metrics());
    assert_eq!(mc.cache_hits, 4, "every question after the first shares the system prompt");
    assert!(mc.cache_tokens >= 4 * 60, "the shared prefix was not decoded again: {mc:?}");
    assert_eq!(mp.cache_hits, 0);
    assert_eq!(mc.prompt_tokens + mc.cache_tokens, mp.prompt_tokens);
}

/// Requests that arrive together with the same system prompt: the later ones wait for the
/// first one's prefill of it and copy its cells (in this engine's split KV cache, a whole
/// copy and a trim), and their answers are those of an engine that shares nothing.
#[test]
fn requests_arriving_together_share_the_prompt_they_start_with() {
    let shared = exact_engine(true);
    let plain = exact_engine(false);
    let (s, p) = (shared.role(Role::Coder).unwrap(), plain.role(Role::Coder).unwrap());
    let together = collect_all(s, QUESTIONS.map(ask).into());
    let alone: Vec<String> = QUESTIONS.iter().map(|q| collect_all(p, vec![ask(q)]).remove(0)).collect();
    assert_eq!(together, alone);
    let (ms, mp) = (s.metrics(), p.metrics());
    // Together, not one after another from the cache of finished prompts: about 24 steps.
    assert!(ms.decode_steps < 2 * 24, "the requests ran one after another: {ms:?}");
    assert_eq!(ms.cache_hits, 4, "each request after the first shares the system prompt: {ms:?}");
    assert!(ms.cache_tokens >= 4 * 60, "the shared prefix was not decoded again: {ms:?}");
    assert_eq!(ms.prompt_tokens + ms.cache_tokens, mp.prompt_tokens);
}

#[test]
fn grammar_constrains_the_output() {
    let _serial = serial();
    let schema =
        r#"{"type":"object","properties":{"answer":{"type":"string","enum":["yes","no"]}},"required":["answer"]}"#;
    let mut sampling = greedy(32);
    sampling.grammar = Some(quorum::engine::json_schema_grammar(schema).unwrap());
    let out = run(Role::Voter, chat("Is the sky blue? Reply in JSON.", sampling, 1)).remove(0);
    let value: serde_json::Value = serde_json::from_str(&out.text).unwrap_or_else(|e| panic!("{e}: {:?}", out.text));
    assert!(value["answer"] == "yes" || value["answer"] == "no", "{value}");
    // Tokens the model would never pick itself: drawn tokens break the grammar at every
    // step, so each one comes from the grammar-filtered fallback.
    let mut forced = greedy(16);
    forced.temperatures = vec![0.0, 0.7, 1.0];
    forced.grammar = Some(r#"root ::= "zq" [0-9] [0-9] "-" ("x" | "y")"#.into());
    for out in run(Role::Voter, chat("Write a haiku about autumn.", forced, 3)) {
        let t = out.text.as_bytes();
        let ok = t.len() == 6
            && t.starts_with(b"zq")
            && t[2].is_ascii_digit()
            && t[3].is_ascii_digit()
            && t[4] == b'-'
            && matches!(t[5], b'x' | b'y');
        assert!(ok, "{:?}", out.text);
    }
    let mut bad = greedy(4);
    bad.grammar = Some("root ::= (".into());
    let err = engine().role(Role::Voter).unwrap().submit(chat("hi", bad, 1)).unwrap_err();
    assert!(matches!(err, EngineError::Grammar(_)), "{err}");
}

#[test]
fn edit_blocks_cannot_quote_an_excerpt_marker() {
    use quorum::pipeline::{AnswerFormat, EditBlocks};
    let _serial = serial();
    // Blocks that quote a marker line, as a small coder copies what it was shown: the
    // model's own continuation quotes it again.
    let block = "FILE: a.py\n<<<<<<< SEARCH\ndef f():\n... (lines 3-9 not shown)\n=======\ndef f():\n    return 1\n>>>>>>> REPLACE\n";
    let prompt = block.repeat(4);
    let complete = |grammar: Option<String>| {
        let sampling = SamplingParams { grammar, ..greedy(24) };
        let req = GenerateRequest { prompt: Prompt::Text(prompt.clone()), sampling, n: 1 };
        run(Role::Coder, req).remove(0).text
    };
    let search = |text: &str| text.split("=======").next().unwrap_or_default().to_string();
    let free = complete(None);
    assert!(search(&free).contains("\n... ("), "the prompt leads the model to quote the marker: {free:?}");
    let format = EditBlocks { paths: vec!["a.py".into()], max_blocks: 1 };
    let held = complete(Some(format.grammar()));
    assert!(held.starts_with("FILE: a.py\n<<<<<<< SEARCH\n"), "{held:?}");
    assert!(!search(&held).contains("\n..."), "{held:?}");
}
