//! The CPU's share of a decode step on a GPU: the greedy pick and the top 40 of one row of
//! 151,936 logits (Qwen2.5's vocabulary), against the plain scans they replaced.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use quorum::engine::pick;

/// Logits with few ties, from a fixed linear congruential sequence.
fn row() -> Vec<f32> {
    let mut x: u64 = 12345;
    (0..151_936)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 40) as f32 / 1_000_000.0 - 8.0
        })
        .collect()
}

/// The scan `pick::argmax` replaced: one compare and a dependent load per logit.
fn argmax_scan(logits: &[f32]) -> usize {
    (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

/// The pass `pick::top_k` replaced: each logit compared with the lowest kept one.
fn top_k_scan(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut top: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (i, &logit) in logits.iter().enumerate() {
        if top.len() == k && logit.partial_cmp(&top[k - 1].1) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let at = top.partition_point(|t| t.1 >= logit);
        top.insert(at, (i, logit));
        top.truncate(k);
    }
    top
}

fn picks(c: &mut Criterion) {
    let logits = row();
    assert_eq!(pick::argmax(&logits).0 as usize, argmax_scan(&logits));
    let mut group = c.benchmark_group("pick");
    group.bench_function("argmax", |b| b.iter(|| pick::argmax(black_box(&logits))));
    group.bench_function("argmax_scan", |b| b.iter(|| argmax_scan(black_box(&logits))));
    group.bench_function("top_k_40", |b| b.iter(|| pick::top_k(black_box(&logits), 40)));
    group.bench_function("top_k_40_scan", |b| b.iter(|| top_k_scan(black_box(&logits), 40)));
    group.finish();
}

criterion_group!(benches, picks);
criterion_main!(benches);
