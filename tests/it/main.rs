//! quorum's integration tests: one binary, a module per area. Tests that run models use
//! the real llama.cpp with SmolLM2-135M (fetched by `scripts/fetch-small-models.sh`).

mod api;
mod cli;
mod config;
mod durability;
mod engine;
mod eval;
mod fuzz;
mod hardening;
mod hub;
mod layout;
mod media;
mod pipeline;
mod pipeline_real;
mod speculation;
mod state;
mod support;
mod tasks;
mod templates;
mod tools;
mod vision;
