//! Per-sequence sampler chains.

use llama_cpp_2::sampling::LlamaSampler;

/// Resolved sampling settings of one sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
}

impl Sampling {
    /// Temperature 0 is greedy (deterministic); otherwise top-p, temperature, then a
    /// seeded draw, the order llama.cpp's own samplers use.
    pub fn sampler(&self) -> LlamaSampler {
        if self.temperature <= 0.0 {
            return LlamaSampler::greedy();
        }
        LlamaSampler::chain_simple([
            LlamaSampler::top_p(self.top_p, 1),
            LlamaSampler::temp(self.temperature),
            LlamaSampler::dist(self.seed),
        ])
    }
}
