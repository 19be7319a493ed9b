//! quorum: a local, multi-agent coding service. One process loads the role models
//! (preprocessor, planner, coder, voter, reviewer) through llama.cpp and serves them
//! behind an OpenAI-compatible API.
//!
//! Layers, each depending only on those below it:
//! `cli -> app -> api -> spec -> pipeline -> {engine, state, tools, media} -> config -> models`;
//! [`git`] is a leaf any layer may use.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod eval;
pub mod git;
pub mod media;
pub mod models;
pub mod pipeline;
pub mod prompts;
pub mod spec;
pub mod state;
pub mod tools;
