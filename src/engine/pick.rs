//! Picks off a row of logits without llama.cpp's vocabulary-sized candidate array: the
//! greedy token, and the top k for a draw. Both read the row in fixed-width chunks that
//! the compiler turns into SIMD, since for a 151k-token vocabulary these passes are the
//! CPU's share of every decode step on a GPU.

use std::cmp::Ordering;

use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::LlamaToken;

/// Logits compared at once.
const LANES: usize = 16;

/// The first token of the highest logit, as llama.cpp's greedy sampler picks it (NaN is
/// never the highest).
pub fn argmax(logits: &[f32]) -> LlamaToken {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = logits.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (best, &logit) in lanes.iter_mut().zip(chunk) {
            *best = if logit > *best { logit } else { *best };
        }
    }
    let highest = lanes.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    // All -inf (or NaN): the first token, as a scan that only moves on a higher one gives.
    let at = if highest == f32::NEG_INFINITY { 0 } else { logits.iter().position(|&l| l == highest).unwrap_or(0) };
    LlamaToken(at as i32)
}

/// The `k` highest logits, highest first (the first of equal ones first), in one pass. Once
/// `k` are held, a chunk with no logit above the lowest of them is passed over whole.
pub fn top_k(logits: &[f32], k: usize) -> Vec<LlamaTokenData> {
    let mut top: Vec<LlamaTokenData> = Vec::with_capacity(k + 1);
    let mut floor = None;
    for (c, chunk) in logits.chunks(LANES).enumerate() {
        if let Some(floor) = floor {
            if !chunk.iter().fold(false, |any, &l| any | (l > floor)) {
                continue;
            }
        }
        for (j, &logit) in chunk.iter().enumerate() {
            if floor.is_some_and(|floor| logit.partial_cmp(&floor) != Some(Ordering::Greater)) {
                continue;
            }
            let at = top.partition_point(|t| t.logit() >= logit);
            top.insert(at, LlamaTokenData::new(LlamaToken((c * LANES + j) as i32), logit, 0.0));
            top.truncate(k);
            if top.len() == k {
                floor = Some(top[k - 1].logit());
            }
        }
    }
    top
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Logits with few ties, from a fixed linear congruential sequence.
    pub(crate) fn logits(n: usize) -> Vec<f32> {
        let mut x: u64 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 40) as f32 / 1_000_000.0
            })
            .collect()
    }

    #[test]
    fn top_k_keeps_the_highest_logits_in_order() {
        let all = logits(5000);
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let top: Vec<f32> = top_k(&all, 40).iter().map(|t| t.logit()).collect();
        assert_eq!(top, sorted[..40]);
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 2).iter().map(|t| t.id().0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(top_k(&[1.0], 4).len(), 1);
        // Equal logits across chunks: the first ones are kept.
        let mut flat = vec![1.0; 100];
        flat[70] = 2.0;
        assert_eq!(top_k(&flat, 3).iter().map(|t| t.id().0).collect::<Vec<_>>(), [70, 0, 1]);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0]).0, 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0]).0, 1);
        assert_eq!(argmax(&[7.0]).0, 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 40]).0, 0);
        let mut long = logits(1000);
        long[517] = 1e9;
        long[903] = 1e9;
        assert_eq!(argmax(&long).0, 517);
        let all = logits(151_936);
        let scan = (0..all.len()).fold(0, |best, i| if all[i] > all[best] { i } else { best });
        assert_eq!(argmax(&all).0 as usize, scan);
    }
}
