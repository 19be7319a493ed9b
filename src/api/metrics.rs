//! `GET /metrics` in the Prometheus text format, one series per model.

use std::fmt::Write;

use crate::engine::MetricsSnapshot;

type Getter = fn(&MetricsSnapshot) -> f64;

const SERIES: [(&str, &str, &str, Getter); 18] = [
    ("quorum_prompt_tokens_total", "counter", "Prompt tokens decoded (prompt-cache hits excluded).", |m| {
        m.prompt_tokens as f64
    }),
    ("quorum_generated_tokens_total", "counter", "Tokens sampled.", |m| m.generated_tokens as f64),
    (
        "quorum_shared_tokens_total",
        "counter",
        "Tokens sampled from a forked sibling's logits: drawn alike so far, decoded once.",
        |m| m.shared_tokens as f64,
    ),
    (
        "quorum_draft_tokens_total",
        "counter",
        "Tokens drafted for speculative decoding (prompt lookup or a draft model).",
        |m| m.drafted_tokens as f64,
    ),
    ("quorum_draft_accepted_total", "counter", "Drafted tokens the sampler drew (kept).", |m| m.accepted_tokens as f64),
    ("quorum_draft_rejected_total", "counter", "Drafted tokens not kept (their KV removed).", |m| {
        (m.drafted_tokens - m.accepted_tokens) as f64
    }),
    ("quorum_decode_steps_total", "counter", "llama_decode calls.", |m| m.decode_steps as f64),
    ("quorum_decode_seconds_total", "counter", "Time in llama_decode.", |m| seconds(m.decode_nanos)),
    ("quorum_device_wait_seconds_total", "counter", "Time waiting for the device to finish a decode.", |m| {
        seconds(m.wait_nanos)
    }),
    ("quorum_sampling_seconds_total", "counter", "Time sampling tokens and releasing their text.", |m| {
        seconds(m.sample_nanos)
    }),
    ("quorum_drafting_seconds_total", "counter", "Time making drafts (lookup, the draft model's decodes).", |m| {
        seconds(m.draft_nanos)
    }),
    ("quorum_prompt_cache_hits_total", "counter", "Requests that reused a cached prompt prefix.", |m| {
        m.cache_hits as f64
    }),
    ("quorum_prompt_cache_tokens_total", "counter", "Prompt tokens not decoded thanks to the prompt cache.", |m| {
        m.cache_tokens as f64
    }),
    ("quorum_sequences_running", "gauge", "Sequences generating or prefilling.", |m| m.running as f64),
    ("quorum_requests_waiting", "gauge", "Requests queued for the model.", |m| m.waiting as f64),
    ("quorum_kv_cells_used", "gauge", "KV cells held by running sequences and cached prompts.", |m| m.kv_cells as f64),
    ("quorum_prompt_cache_entries", "gauge", "Prompts kept in the prompt cache.", |m| m.cached_prompts as f64),
    (
        "quorum_worker_restarts_total",
        "counter",
        "Restarts of the model's worker after a fault (its requests in flight got 503).",
        |m| m.restarts as f64,
    ),
];

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

pub fn render(models: &[(String, MetricsSnapshot)]) -> String {
    let mut out = String::new();
    for (name, kind, help, get) in SERIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (model, m) in models {
            let _ = writeln!(out, "{name}{{model=\"{}\"}} {}", model.replace('"', "'"), get(m));
        }
    }
    out
}
