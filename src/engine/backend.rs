//! The process-wide llama.cpp backend. `LlamaBackend::init` succeeds once per process,
//! so it lives in a `OnceLock`; llama.cpp's own logging is routed into `tracing` first.

use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::{send_logs_to_tracing, LogOptions};

static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();

pub fn backend() -> &'static LlamaBackend {
    BACKEND.get_or_init(|| {
        send_logs_to_tracing(LogOptions::default());
        LlamaBackend::init().expect("llama.cpp backend initialises once, guarded by OnceLock")
    })
}
