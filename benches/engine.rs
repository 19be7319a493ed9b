//! Engine throughput on the real small models, in tokens/sec (criterion's elements/s):
//! single-stream decode and prefill per model. Models missing from `models/` are skipped
//! with a message (run `scripts/fetch-small-models.sh`). Run on an idle machine.

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
    let config: Config = Config::resolve(ConfigFile::default(), overrides).ok()?;
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

fn generate(rt: &tokio::runtime::Runtime, handle: &RoleHandle, prompt: &str, max_tokens: u32) -> u32 {
    let request = GenerateRequest {
        prompt: Prompt::Text(prompt.to_string()),
        sampling: SamplingParams {
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
            ignore_eos: true,
            ..Default::default()
        },
        n: 1,
    };
    let out = rt.block_on(async { handle.submit(request).unwrap().collect().await.unwrap() });
    out[0].completion_tokens
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for file in MODELS {
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
        group.bench_function(format!("prefill_{prompt_tokens}_tokens"), |b| b.iter(|| generate(&rt, &handle, &prompt, 1)));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
