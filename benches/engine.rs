//! Engine throughput on the real small models, in tokens/sec (criterion's elements/s):
//! single-stream decode and prefill, aggregate decode of 5 concurrent sequences, and the
//! wall time of 5 candidates of 128 tokens from one ~300-token prompt, forked from one
//! prefill vs. 5 independent requests. Models missing from `models/` are skipped with a
//! message (run `scripts/fetch-small-models.sh`). Run on an idle machine.
//! `QUORUM_BENCH_MODELS=smollm2,qwen2.5-coder-0.5b` limits the models.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorum::config::{Config, ConfigFile, Overrides};
use quorum::engine::{Engine, GenerateRequest, Prompt, RoleHandle, SamplingParams};
use quorum::models::{resolve, Role};

const MODELS: [&str; 3] = [
    "smollm2-135m-instruct-q4_1.gguf",
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
];
const DECODE_TOKENS: u32 = 64;

fn load(file: &str) -> Option<(Engine, RoleHandle)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(file);
    if !path.exists() {
        eprintln!("skipping {file}: not in models/ (run scripts/fetch-small-models.sh)");
        return None;
    }
    let overrides = Overrides { models: vec![format!("coder={}", path.display())], ..Default::default() };
    let mut config: Config = Config::resolve(ConfigFile::default(), overrides).ok()?;
    // Every request prefills in full: the fork is compared with independent requests,
    // not with the prompt cache.
    config.engine.prompt_cache = false;
    let files: Vec<_> = resolve(&config.profile, &config.models_dir)
        .ok()?
        .into_iter()
        .filter(|f| f.roles.contains(&Role::Coder))
        .map(|mut f| {
            f.roles = vec![Role::Coder];
            f
        })
        .collect();
    let engine = Engine::load(&files, &config.profile, &config.engine, &|_| {}).ok()?;
    let handle = engine.role(Role::Coder)?.clone();
    Some((engine, handle))
}

fn request(prompt: &str, max_tokens: u32, n: u32, temperature: f32, seed: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Text(prompt.to_string()),
        sampling: SamplingParams {
            temperature: Some(temperature),
            max_tokens: Some(max_tokens),
            seed: Some(seed),
            ignore_eos: true,
            ..Default::default()
        },
        n,
    }
}

/// Runs the requests concurrently; returns the tokens generated in all.
fn generate_all(rt: &tokio::runtime::Runtime, handle: &RoleHandle, requests: Vec<GenerateRequest>) -> u32 {
    rt.block_on(async {
        let generations: Vec<_> = requests.into_iter().map(|r| handle.submit(r).unwrap()).collect();
        let mut tokens = 0;
        for g in generations {
            tokens += g.collect().await.unwrap().iter().map(|c| c.completion_tokens).sum::<u32>();
        }
        tokens
    })
}

fn generate(rt: &tokio::runtime::Runtime, handle: &RoleHandle, prompt: &str, max_tokens: u32) -> u32 {
    generate_all(rt, handle, vec![request(prompt, max_tokens, 1, 0.0, 0)])
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let only = std::env::var("QUORUM_BENCH_MODELS").ok();
    for file in MODELS {
        if only.as_ref().is_some_and(|o| !o.split(',').any(|m| file.starts_with(m))) {
            continue;
        }
        let Some((_engine, handle)) = load(file) else { continue };
        let mut group = c.benchmark_group(file.trim_end_matches(".gguf"));
        group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));

        group.throughput(Throughput::Elements(DECODE_TOKENS as u64));
        group.bench_function("decode_64_tokens", |b| {
            b.iter(|| assert_eq!(generate(&rt, &handle, "Once upon a time", DECODE_TOKENS), DECODE_TOKENS))
        });

        // A prompt of about 256 tokens and one generated token: prefill speed.
        let prompt = "fn add(a: i32, b: i32) -> i32 { a + b }\n".repeat(16);
        let prompt_tokens = handle.count_tokens(&prompt) as u64;
        group.throughput(Throughput::Elements(prompt_tokens));
        group.bench_function(format!("prefill_{prompt_tokens}_tokens"), |b| {
            b.iter(|| generate(&rt, &handle, &prompt, 1))
        });

        // Five sequences decoding together (short distinct prompts).
        group.throughput(Throughput::Elements(5 * DECODE_TOKENS as u64));
        group.bench_function("aggregate_5x64_tokens", |b| {
            b.iter(|| {
                let requests = (0..5).map(|i| request(&format!("Story {i}:"), DECODE_TOKENS, 1, 0.7, i)).collect();
                assert_eq!(generate_all(&rt, &handle, requests), 5 * DECODE_TOKENS)
            })
        });

        // The coder stage's shape: 5 candidates of 128 tokens from one ~300-token prompt.
        let task = "# Task: implement the function below and keep the tests passing.\n".repeat(20);
        group.throughput(Throughput::Elements(5 * 128));
        group.bench_function("5x128_fork_one_prefill", |b| {
            b.iter(|| assert_eq!(generate_all(&rt, &handle, vec![request(&task, 128, 5, 0.7, 1)]), 640))
        });
        group.bench_function("5x128_independent_requests", |b| {
            b.iter(|| {
                let requests = (0..5).map(|i| request(&task, 128, 1, 0.7, i)).collect();
                assert_eq!(generate_all(&rt, &handle, requests), 640)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
