//! The stages, in the order a task runs them: each takes what it needs of the run record
//! and returns its typed output; the runner stores it.

pub mod code;
pub mod output;
pub mod plan;
pub mod preprocess;
pub mod probe;
pub mod repair;
pub mod review;
pub mod vote;
