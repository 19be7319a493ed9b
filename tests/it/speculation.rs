//! Speculative decoding on the real llama.cpp: the same tokens as without it, under greedy
//! decoding and under sampling, with forks, grammars, stop strings and the prompt cache.
//! Prompt lookup and draft models on SmolLM2-135M (drafting for itself: the mechanism, at
//! the cost of the smallest model), and the small profile's pairing (Qwen2.5-Coder 0.5B
//! drafting for the 1.5B).

use std::collections::HashMap;

use quorum::config::{Config, Speculative};
use quorum::engine::{
    ChatMessage, Completion, Engine, EngineError, GenerateRequest, Prompt, RoleHandle, SamplingParams,
};
use quorum::models::{resolve, ModelSource, Role};

use super::support::{repo_root, smollm, smollm_config};

/// An engine whose outputs do not depend on how a sequence's tokens are batched: a KV
/// stream per sequence, and flash attention, whose CPU kernel computes each query row on
/// its own (without it, the attention of a draft's rows takes another kernel than one
/// row's, and near-ties came out differently: 2 of 5 greedy answers here).
fn engine(speculation: Speculative) -> Engine {
    load(smollm_config(), speculation, ModelSource::Local { path: smollm() }).unwrap()
}

/// The config's coder, drafted for by `draft`, on its own (the other roles on SmolLM2).
fn load(mut config: Config, speculation: Speculative, draft: ModelSource) -> Result<Engine, EngineError> {
    config.engine.flash_attention = true;
    config.engine.kv_unified = false;
    config.engine.speculation = speculation;
    for (role, spec) in config.profile.roles.iter_mut() {
        spec.context = 1024;
        spec.parallel = if matches!(role, Role::Coder) { 8 } else { 1 };
        if *role != Role::Coder {
            spec.source = ModelSource::Local { path: smollm() };
        }
        spec.draft = (*role == Role::Coder).then(|| draft.clone());
    }
    let files = resolve(&config.profile, &config.models_dir).unwrap();
    Engine::load(&files, &config.profile, &config.engine, &|_| {})
}

fn qwen(size: &str) -> ModelSource {
    ModelSource::Local { path: repo_root().join(format!("models/qwen2.5-coder-{size}-instruct-q4_k_m.gguf")) }
}

/// Asks for text the model mostly copies from its prompt, so that lookup drafts are kept.
const LIST: &str = "alpha, bravo, charlie, delta, echo, foxtrot, golf, hotel, india, juliett, kilo, lima";
const CODE: &str = "def area(width, height):\n    return width * height\n\n\ndef perimeter(width, height):\n    return 2 * (width + height)\n";

fn ask(text: &str, sampling: SamplingParams, n: u32) -> GenerateRequest {
    GenerateRequest { prompt: Prompt::Chat(vec![ChatMessage::new("user", text)]), sampling, n }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams { temperature: Some(0.0), max_tokens: Some(max_tokens), ..Default::default() }
}

/// Every request at once, so that they share decodes; each one's choices.
fn run_all(handle: &RoleHandle, requests: Vec<GenerateRequest>) -> Vec<Vec<Completion>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let generations: Vec<_> = requests.into_iter().map(|r| handle.submit(r).unwrap()).collect();
        let mut out = Vec::new();
        for g in generations {
            out.push(g.collect().await.unwrap());
        }
        out
    })
}

fn texts(choices: &[Vec<Completion>]) -> Vec<Vec<String>> {
    choices.iter().map(|c| c.iter().map(|c| c.text.clone()).collect()).collect()
}

fn requests() -> Vec<GenerateRequest> {
    let mut stop = greedy(96);
    stop.stop = vec!["india".into()];
    let mut grammar = greedy(96);
    grammar.grammar = Some(
        r#"root ::= "[" item ("," " "? item)* "]"
item ::= [a-z]+"#
            .into(),
    );
    let sample = SamplingParams { temperature: Some(0.8), max_tokens: Some(48), seed: Some(3), ..Default::default() };
    vec![
        ask(&format!("Repeat this list exactly, once: {LIST}"), greedy(96), 1),
        ask(&format!("Copy this code exactly:\n{CODE}"), greedy(96), 1),
        ask(&format!("Repeat this list exactly, once: {LIST}"), stop, 1),
        ask(&format!("Write this list as a JSON array of strings: {LIST}"), grammar, 1),
        ask(&format!("Copy this code exactly:\n{CODE}"), sample, 3),
    ]
}

#[test]
fn speculation_changes_speed_not_tokens() {
    // A fresh engine each time: the prompt cache's KV was computed in other decodes, so
    // the two sides must have served the same requests before.
    for mode in [Speculative::Lookup, Speculative::Draft] {
        same_tokens(&engine(mode), &engine(Speculative::Off));
    }
}

fn same_tokens(on: &Engine, off: &Engine) {
    let (h_on, h_off) = (on.role(Role::Coder).unwrap(), off.role(Role::Coder).unwrap());
    // Twice on each: the second time the prompts come from the prompt cache. One request
    // at a time: on a CPU, which rows share a decode can flip a near-tie of greedy
    // decoding with or without speculation (the 135M model's first answer here differs
    // between running alone and beside the others, speculation off).
    for round in 0..2 {
        let with = run_each(h_on, requests());
        let without = run_each(h_off, requests());
        assert_eq!(texts(&with), texts(&without), "round {round}");
        let m = h_on.metrics();
        assert!(m.drafted_tokens > 0 && m.accepted_tokens > 0, "nothing was drafted or kept: {m:?}");
        let kept = with.iter().flatten().map(|c| c.speculation).max_by_key(|s| s.accepted).unwrap_or_default();
        // A draft of a copy under way runs to where the 135M model's copy turns.
        assert!(kept.accepted >= 12, "copied text keeps a run of its drafts: {kept:?}");
        assert_eq!(h_off.metrics().drafted_tokens, 0);
    }
    assert!(h_on.metrics().cache_hits > 0);
    // All at once, drafts are verified in the decodes the others share; the stop string
    // cut the answer, the grammar held.
    let before = h_on.metrics().accepted_tokens;
    let with = run_all(h_on, requests());
    assert!(h_on.metrics().accepted_tokens > before);
    assert!(!with[2][0].text.contains("india"), "{:?}", with[2][0].text);
    assert!(with[3][0].text.starts_with('['), "{:?}", with[3][0].text);
}

fn run_each(handle: &RoleHandle, requests: Vec<GenerateRequest>) -> Vec<Vec<Completion>> {
    requests.into_iter().flat_map(|r| run_all(handle, vec![r])).collect()
}

/// With sampling, a drafted token is kept when the sampler, drawing at its position as it
/// would without a draft, draws it: the rejection rule of speculative sampling for a draft
/// that is one token for sure. So over many seeds the outputs are distributed as without
/// speculation (here: each seed's output is the same one).
#[test]
fn sampled_outputs_are_distributed_as_without_speculation() {
    let off = engine(Speculative::Off);
    for mode in [Speculative::Lookup, Speculative::Draft] {
        same_samples(&engine(mode), &off);
    }
}

fn same_samples(on: &Engine, off: &Engine) {
    let (h_on, h_off) = (on.role(Role::Coder).unwrap(), off.role(Role::Coder).unwrap());
    // A plain prompt the model mostly goes on repeating, with a sampled word here and there.
    let line = "the quick brown fox jumps over the lazy dog and runs into the forest\n";
    let prompt = line.repeat(4);
    let seeds: Vec<u32> = (0..96).collect();
    let batch = |h: &RoleHandle, seeds: &[u32]| -> Vec<String> {
        let requests = seeds
            .iter()
            .map(|&seed| {
                let s = SamplingParams {
                    temperature: Some(1.0),
                    max_tokens: Some(12),
                    seed: Some(seed),
                    ..Default::default()
                };
                GenerateRequest { prompt: Prompt::Text(prompt.clone()), sampling: s, n: 1 }
            })
            .collect();
        run_all(h, requests).into_iter().map(|mut c| c.remove(0).text).collect()
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for chunk in seeds.chunks(8) {
        with.extend(batch(h_on, chunk));
        without.extend(batch(h_off, chunk));
    }
    let m = h_on.metrics();
    assert!(m.accepted_tokens > 0, "no draft was kept, so nothing was tested: {m:?}");
    let distinct = |v: &[String]| v.iter().collect::<std::collections::HashSet<_>>().len();
    assert!(distinct(&without) > 10, "sampling at temperature 1.2 should vary: {without:?}");
    let same = with.iter().zip(&without).filter(|(a, b)| a == b).count();
    // Total variation distance between the two empirical distributions of outputs.
    let mut freq: HashMap<&str, (i32, i32)> = HashMap::new();
    for (a, b) in with.iter().zip(&without) {
        freq.entry(a).or_default().0 += 1;
        freq.entry(b).or_default().1 += 1;
    }
    let tv = freq.values().map(|(a, b)| (a - b).abs()).sum::<i32>() as f64 / (2.0 * seeds.len() as f64);
    eprintln!("{same}/{} seeds give the same output; total variation {tv:.3}; {m:?}", seeds.len());
    assert_eq!(same, seeds.len(), "total variation {tv:.3}");
}

/// Samples of one prompt share a row while they draw the same tokens, which is where they
/// copy their prompt: the row drafts, every sample verifies the draft from the same
/// logits, and one that keeps a different part of it gets the drafted cells it kept.
#[test]
fn forked_samples_verify_a_draft_on_the_row_they_share() {
    let (on, off) = (engine(Speculative::Lookup), engine(Speculative::Off));
    let (h_on, h_off) = (on.role(Role::Coder).unwrap(), off.role(Role::Coder).unwrap());
    // Greedy samples never part: whatever is kept was drafted on the row they share.
    let greedy_fork = vec![ask(&format!("Repeat this list exactly, once: {LIST}"), greedy(48), 3)];
    let with = run_each(h_on, greedy_fork.clone());
    assert_eq!(texts(&with), texts(&run_each(h_off, greedy_fork)));
    let m = h_on.metrics();
    assert!(m.shared_tokens > 0 && m.accepted_tokens > 8, "drafts kept on a shared row: {m:?}");
    // Sampled, they part, and give the same tokens as without.
    let sampled = |seed| {
        let s = SamplingParams { temperature: Some(0.5), max_tokens: Some(64), seed: Some(seed), ..Default::default() };
        ask(&format!("Copy this code exactly:\n{CODE}"), s, 5)
    };
    let requests = || (0..4).map(sampled).collect::<Vec<_>>();
    let with = run_each(h_on, requests());
    assert_eq!(texts(&with), texts(&run_each(h_off, requests())));
    let parted = with.iter().filter(|c| c.iter().any(|x| x.text != c[0].text)).count();
    assert!(parted > 0, "no request's samples parted: {:?}", texts(&with));
    eprintln!("{parted} of 4 parted; {:?}", h_on.metrics());
}

/// Prose repeats no long run of its prompt, so lookup finds little to draft; the draft
/// model drafts anyway, and drafting for itself, greedy, its drafts are kept.
#[test]
fn the_draft_model_drafts_where_lookup_finds_nothing() {
    let prose = || vec![ask("Write a short story about a lighthouse keeper and a storm.", greedy(64), 1)];
    let (lookup, draft, off) = (engine(Speculative::Lookup), engine(Speculative::Draft), engine(Speculative::Off));
    let coder = |e: &Engine| e.role(Role::Coder).unwrap().clone();
    let (with, without) = (run_all(&coder(&draft), prose()), run_all(&coder(&off), prose()));
    assert_eq!(texts(&with), texts(&without));
    run_all(&coder(&lookup), prose());
    let (m, l) = (coder(&draft).metrics(), coder(&lookup).metrics());
    assert!(m.drafted_tokens > l.drafted_tokens + 16, "draft model {m:?} against lookup {l:?}");
    assert!(m.accepted_tokens * 10 > m.drafted_tokens * 8, "a model drafting for itself: {m:?}");
}

/// The small profile's pairing: the 0.5B coder drafts for the 1.5B, and the 1.5B keeps most
/// of its drafts on copied code. Its greedy answers are not compared with those without
/// speculation: on this CPU the 1.5B's Q4_K_M decodes of one row and of several differ
/// slightly, and near-ties came out either way from one run to the next (README,
/// Exactness); SmolLM2's tests above hold the tokens to that.
#[test]
fn the_half_b_coder_drafts_for_the_one_and_a_half_b() {
    let mut config = smollm_config();
    config.profile.roles.get_mut(&Role::Coder).unwrap().source = qwen("1.5b");
    let on = load(config, Speculative::Draft, qwen("0.5b")).unwrap();
    let coder = on.role(Role::Coder).unwrap();
    let with = run_each(coder, vec![ask(&format!("Copy this code exactly:\n{CODE}"), greedy(48), 1)]);
    assert!(with[0][0].text.contains("return 2 * (width + height)"), "{:?}", with[0][0].text);
    let m = coder.metrics();
    assert!(m.accepted_tokens * 2 > m.drafted_tokens && m.accepted_tokens > 8, "{m:?}");
    eprintln!("0.5B for 1.5B: {m:?}");
}

/// A draft model of another vocabulary is refused at load, naming both files.
#[test]
fn a_draft_of_another_vocabulary_is_refused_at_load() {
    let Err(err) = load(smollm_config(), Speculative::Draft, qwen("0.5b")) else {
        panic!("Qwen's vocabulary cannot draft for SmolLM2's");
    };
    let msg = err.to_string();
    assert!(matches!(err, EngineError::Draft { .. }), "{msg}");
    assert!(msg.contains("qwen2.5-coder-0.5b") && msg.contains("cannot draft for smollm2"), "{msg}");
    assert!(msg.contains("tokens against"), "the sizes differ: {msg}");
    // Without drafting, the same config loads (the draft is not needed).
    load(smollm_config(), Speculative::Lookup, qwen("0.5b")).unwrap();
    let missing = ModelSource::Local { path: "/nonexistent/draft.gguf".into() };
    let err = load(smollm_config(), Speculative::Draft, missing.clone()).err().expect("a missing draft is an error");
    assert!(err.to_string().contains("quorum models pull"), "{err}");
    load(smollm_config(), Speculative::Auto, missing).expect("auto goes without a missing draft");
}
