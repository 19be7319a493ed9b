//! Per-sequence samplers.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

/// Resolved sampling settings of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
    /// GBNF grammar constraining the output (root rule `root`).
    pub grammar: Option<String>,
}

impl Sampling {
    /// Greedy for temperature 0, else top-k 40, top-p, temperature and a seeded draw,
    /// llama.cpp's default order. Top-k first keeps top-p from sorting the whole
    /// vocabulary (151k tokens for Qwen) at every step.
    pub fn sampler(&self, model: &LlamaModel) -> Result<SeqSampler, String> {
        let grammar = match &self.grammar {
            Some(gbnf) => Some(LlamaSampler::grammar(model, gbnf, "root").map_err(|e| {
                format!("llama.cpp refused it ({e}): an undefined rule, left recursion or a syntax error; the server log has its reason")
            })?),
            None => None,
        };
        let chain = if self.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::top_k(40),
                LlamaSampler::top_p(self.top_p, 1),
                LlamaSampler::temp(self.temperature),
                LlamaSampler::dist(self.seed),
            ])
        };
        Ok(SeqSampler { grammar, chain, eos: model.vocab().eos() })
    }
}

/// A sequence's sampler. The grammar is checked against the drawn token only, and applied
/// to the whole vocabulary just when that token breaks it (llama.cpp's common sampler does
/// the same): checking 151k tokens against a grammar at every step made grammar-constrained
/// output five times slower. Greedy picks are identical either way; a draw is the same
/// distribution restricted to what the grammar allows.
pub struct SeqSampler {
    grammar: Option<LlamaSampler>,
    chain: LlamaSampler,
    eos: LlamaToken,
}

impl SeqSampler {
    /// Samples the token for the logits at batch index `idx` and accepts it.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, idx: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else {
            return self.chain.sample(ctx, idx);
        };
        let mut candidates = ctx.token_data_array_ith(idx);
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
        grammar.accept(token);
        self.chain.accept(token);
        token
    }
}
