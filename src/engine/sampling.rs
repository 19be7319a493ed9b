//! Per-sequence sampler chains.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

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
    /// The grammar (if any) first, so that only tokens it allows remain; then greedy for
    /// temperature 0, else top-k 40, top-p, temperature and a seeded draw, llama.cpp's
    /// default order. Top-k first keeps top-p from sorting the whole vocabulary (151k
    /// tokens for Qwen) at every step.
    pub fn sampler(&self, model: &LlamaModel) -> Result<LlamaSampler, String> {
        let mut chain = Vec::new();
        if let Some(gbnf) = &self.grammar {
            chain.push(LlamaSampler::grammar(model, gbnf, "root").map_err(|e| format!("invalid grammar: {e}"))?);
        }
        if self.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.push(LlamaSampler::top_k(40));
            chain.push(LlamaSampler::top_p(self.top_p, 1));
            chain.push(LlamaSampler::temp(self.temperature));
            chain.push(LlamaSampler::dist(self.seed));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}
