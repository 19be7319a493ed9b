//! Per-model counters, written by the worker and read by `/metrics` and `/health`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::scheduler::Usage;

#[derive(Debug, Default)]
pub struct ModelMetrics {
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    shared_tokens: AtomicU64,
    drafted_tokens: AtomicU64,
    accepted_tokens: AtomicU64,
    decode_steps: AtomicU64,
    decode_nanos: AtomicU64,
    wait_nanos: AtomicU64,
    sample_nanos: AtomicU64,
    draft_nanos: AtomicU64,
    running: AtomicU64,
    waiting: AtomicU64,
    kv_cells: AtomicU64,
    cached_prompts: AtomicU64,
    cache_hits: AtomicU64,
    cache_tokens: AtomicU64,
    restarts: AtomicU64,
    recovering: AtomicBool,
    /// Set by a test to make the worker panic at its next step.
    inject_fault: AtomicBool,
}

/// What one decode step did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct StepCounts {
    pub prompt: u64,
    pub generated: u64,
    pub shared: u64,
    pub drafted: u64,
    pub accepted: u64,
    /// Time in `llama_decode`, waiting for the device to finish it, in sampling and
    /// judging the tokens, and in making drafts.
    pub decode_nanos: u64,
    pub wait_nanos: u64,
    pub sample_nanos: u64,
    pub draft_nanos: u64,
}

/// A consistent-enough reading of [`ModelMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Prompt tokens decoded (not counting those reused from the prompt cache).
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
    /// Of those, tokens sampled from a forked sibling's logits (no decode of their own).
    pub shared_tokens: u64,
    /// Tokens drafted for speculative decoding, and of those, the ones the sampler drew.
    pub drafted_tokens: u64,
    pub accepted_tokens: u64,
    pub decode_steps: u64,
    /// Where a step's time went: `llama_decode`, the wait for the device to finish it
    /// (none on the CPU, where the decode is done when it returns), sampling and judging
    /// tokens, drafting (lookup and the draft model's decodes). The rest is the scheduler
    /// and channels.
    pub decode_nanos: u64,
    pub wait_nanos: u64,
    pub sample_nanos: u64,
    pub draft_nanos: u64,
    pub running: u64,
    pub waiting: u64,
    pub kv_cells: u64,
    pub cached_prompts: u64,
    pub cache_hits: u64,
    /// Prompt tokens that did not need decoding thanks to the prompt cache.
    pub cache_tokens: u64,
    /// Times the worker was restarted after a fault.
    pub restarts: u64,
}

impl ModelMetrics {
    pub(super) fn on_restart(&self) {
        self.restarts.fetch_add(1, Relaxed);
    }

    pub(super) fn set_recovering(&self, yes: bool) {
        self.recovering.store(yes, Relaxed);
    }

    pub fn recovering(&self) -> bool {
        self.recovering.load(Relaxed)
    }

    pub(super) fn inject_fault(&self) {
        self.inject_fault.store(true, Relaxed);
    }

    pub(super) fn take_injected_fault(&self) -> bool {
        self.inject_fault.swap(false, Relaxed)
    }

    pub(super) fn on_admit(&self, reused: usize) {
        if reused > 0 {
            self.cache_hits.fetch_add(1, Relaxed);
            self.cache_tokens.fetch_add(reused as u64, Relaxed);
        }
    }

    pub(super) fn on_step(&self, c: StepCounts) {
        self.decode_steps.fetch_add(1, Relaxed);
        self.prompt_tokens.fetch_add(c.prompt, Relaxed);
        self.generated_tokens.fetch_add(c.generated, Relaxed);
        self.shared_tokens.fetch_add(c.shared, Relaxed);
        self.drafted_tokens.fetch_add(c.drafted, Relaxed);
        self.accepted_tokens.fetch_add(c.accepted, Relaxed);
        self.decode_nanos.fetch_add(c.decode_nanos, Relaxed);
        self.wait_nanos.fetch_add(c.wait_nanos, Relaxed);
        self.sample_nanos.fetch_add(c.sample_nanos, Relaxed);
        self.draft_nanos.fetch_add(c.draft_nanos, Relaxed);
    }

    pub(super) fn set_usage(&self, usage: Usage, waiting: usize) {
        self.running.store(usage.running_seqs as u64, Relaxed);
        self.kv_cells.store(usage.kv_cells as u64, Relaxed);
        self.cached_prompts.store(usage.cached_seqs as u64, Relaxed);
        self.waiting.store(waiting as u64, Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            generated_tokens: self.generated_tokens.load(Relaxed),
            shared_tokens: self.shared_tokens.load(Relaxed),
            drafted_tokens: self.drafted_tokens.load(Relaxed),
            accepted_tokens: self.accepted_tokens.load(Relaxed),
            decode_steps: self.decode_steps.load(Relaxed),
            decode_nanos: self.decode_nanos.load(Relaxed),
            wait_nanos: self.wait_nanos.load(Relaxed),
            sample_nanos: self.sample_nanos.load(Relaxed),
            draft_nanos: self.draft_nanos.load(Relaxed),
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_cells: self.kv_cells.load(Relaxed),
            cached_prompts: self.cached_prompts.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_tokens: self.cache_tokens.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
        }
    }
}
