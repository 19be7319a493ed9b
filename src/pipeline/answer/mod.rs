//! How a coder answers: edit blocks ([`blocks`]) for long files, whole files
//! ([`whole_files`]) for short ones, and whole-definition rewrites ([`rewrite`]) that an
//! edit block may carry. Each format has a grammar that keeps a small model's answer
//! well-formed, a parser, a salvage for answers cut at the token limit, and an apply.

pub mod blocks;
pub mod rewrite;
pub mod whole_files;
