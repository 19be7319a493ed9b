//! Per-sequence samplers.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

use super::pick;

/// Resolved sampling settings of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub seed: u32,
    /// GBNF grammar constraining the output (root rule `root`).
    pub grammar: Option<String>,
    /// Lazy grammar: it constrains from the first match of these patterns (llama.cpp's
    /// trigger regexes) in the output.
    pub triggers: Vec<String>,
    pub penalties: Penalties,
    pub logit_bias: Vec<(i32, f32)>,
}

/// Penalties on tokens already generated (the last [`PENALTY_WINDOW`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Penalties {
    pub presence: f32,
    pub frequency: f32,
    /// 1: none.
    pub repeat: f32,
}

/// Tokens a penalty looks back over (llama.cpp's default).
const PENALTY_WINDOW: i32 = 64;

impl Penalties {
    fn any(&self) -> bool {
        self.presence != 0.0 || self.frequency != 0.0 || self.repeat != 1.0
    }
}

impl Sampling {
    /// Greedy for temperature 0, else top-k (40 unless asked), top-p, temperature and a
    /// seeded draw, llama.cpp's default order, after the logit bias and the penalties.
    /// Top-k first keeps top-p from sorting the whole vocabulary (151k tokens for Qwen)
    /// at every step.
    pub fn sampler(&self, model: &LlamaModel) -> Result<SeqSampler, String> {
        let refused = |e| {
            format!("llama.cpp refused it ({e}): an undefined rule, left recursion or a syntax error; the server log has its reason")
        };
        let grammar = match &self.grammar {
            Some(gbnf) if self.triggers.is_empty() => {
                Some(LlamaSampler::grammar(model, gbnf, "root").map_err(refused)?)
            }
            Some(gbnf) => {
                Some(LlamaSampler::grammar_lazy_patterns(model, gbnf, "root", &self.triggers, &[]).map_err(refused)?)
            }
            None => None,
        };
        let n_vocab = model.n_vocab();
        let mut stages = Vec::new();
        if !self.logit_bias.is_empty() {
            let biases: Vec<LlamaLogitBias> =
                self.logit_bias.iter().map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t), b)).collect();
            stages.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        let p = self.penalties;
        if p.any() {
            stages.push(LlamaSampler::penalties(n_vocab, PENALTY_WINDOW, p.repeat, p.frequency, p.presence));
        }
        // With nothing before the draw, the draw's top-k can be taken off the logits first.
        let top_k = (stages.is_empty() && self.temperature > 0.0 && (1..=MAX_TOP_K).contains(&self.top_k))
            .then_some(self.top_k as usize);
        if self.temperature <= 0.0 {
            stages.push(LlamaSampler::greedy());
        } else {
            stages.extend(self.draw());
        }
        let argmax = stages.len() == 1 && self.temperature <= 0.0;
        let chain = if stages.len() == 1 { stages.remove(0) } else { LlamaSampler::chain_simple(stages) };
        Ok(SeqSampler { grammar, chain, argmax, top_k, eos: model.vocab().eos() })
    }

    /// The seeded draw: top-k, top-p, temperature, then the distribution.
    fn draw(&self) -> [LlamaSampler; 4] {
        [
            LlamaSampler::top_k(self.top_k as i32),
            LlamaSampler::top_p(self.top_p, 1),
            LlamaSampler::temp(self.temperature),
            LlamaSampler::dist(self.seed),
        ]
    }
}

/// The largest top-k that is taken off the logits before the chain (a pass that keeps the
/// best k in order costs up to k moves per kept token).
const MAX_TOP_K: u32 = 256;

/// A sequence's sampler. The grammar is checked against the drawn token only, and applied
/// to the whole vocabulary just when that token breaks it (llama.cpp's common sampler does
/// the same): checking 151k tokens against a grammar at every step made grammar-constrained
/// output five times slower. Greedy picks are identical either way; a draw is the same
/// distribution restricted to what the grammar allows.
pub struct SeqSampler {
    grammar: Option<LlamaSampler>,
    chain: LlamaSampler,
    /// The chain is greedy alone: the most likely token is read off the logits, without
    /// the vocabulary-sized candidate array llama.cpp's sampler builds for each token.
    argmax: bool,
    /// The chain is the draw alone: its candidates are the top k logits, taken in one pass,
    /// not the whole vocabulary (the same draw: top-k leaves the chain these, in this order).
    top_k: Option<usize>,
    eos: LlamaToken,
}

impl SeqSampler {
    /// Samples the token for the logits at batch index `idx` and accepts it.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else {
            if self.argmax {
                return pick::argmax(ctx.get_logits_ith(idx));
            }
            if self.top_k.is_none() {
                return self.chain.sample(ctx, idx);
            }
            let mut candidates = candidates(self.top_k, ctx, idx);
            candidates.apply_sampler(&mut self.chain);
            let token = candidates.selected_token().unwrap_or(self.eos);
            self.chain.accept(token);
            return token;
        };
        let mut candidates = candidates(self.top_k, ctx, idx);
        candidates.apply_sampler(&mut self.chain);
        let drawn = candidates.selected_token();
        let allowed = drawn.is_some_and(|token| {
            let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
            grammar.apply(&mut single);
            single.data[0].logit().is_finite()
        });
        let token = match drawn {
            Some(token) if allowed => token,
            _ => {
                let mut candidates = ctx.token_data_array_ith(idx);
                grammar.apply(&mut candidates);
                candidates.apply_sampler(&mut self.chain);
                // The grammar always leaves a token (at worst end of generation).
                candidates.selected_token().unwrap_or(self.eos)
            }
        };
        // A token the grammar cannot take (a lazy grammar whose trigger text the model
        // continued otherwise) leaves it broken; the rest of the output goes unconstrained
        // rather than let llama.cpp abort on the next token.
        if grammar.try_accept(token).is_err() {
            tracing::warn!("the grammar could not take a token; the rest of this output is unconstrained");
            self.grammar = None;
        }
        self.chain.accept(token);
        token
    }
}

/// What a chain draws from: the top k logits, or the whole vocabulary.
fn candidates(top: Option<usize>, ctx: &LlamaContext<'_>, idx: i32) -> LlamaTokenDataArray {
    match top {
        Some(k) => LlamaTokenDataArray::new(pick::top_k(ctx.get_logits_ith(idx), k), true),
        None => ctx.token_data_array_ith(idx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pick::{tests::logits, top_k};

    #[test]
    fn drawing_from_the_top_k_draws_what_the_whole_vocabulary_draws() {
        let all = logits(20_000);
        let mut drawn = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let sampling = Sampling {
                temperature: 0.7,
                top_p: 0.95,
                top_k: 40,
                seed,
                grammar: None,
                triggers: Vec::new(),
                penalties: Penalties::default(),
                logit_bias: Vec::new(),
            };
            let draw = |candidates: &mut LlamaTokenDataArray| {
                candidates.apply_sampler(&mut LlamaSampler::chain_simple(sampling.draw()));
                candidates.selected_token()
            };
            let whole = draw(&mut LlamaTokenDataArray::from_iter(
                all.iter().enumerate().map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0)),
                false,
            ));
            let first = draw(&mut LlamaTokenDataArray::new(top_k(&all, 40), true));
            assert!(whole.is_some());
            assert_eq!(whole, first, "seed {seed}");
            drawn.insert(first);
        }
        assert!(drawn.len() > 1, "every seed drew the same token: {drawn:?}");
    }
}
