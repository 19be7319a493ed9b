//! What can go wrong with the state store, each with what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the state file {path}: {reason}. {hint}")]
    Open { path: PathBuf, reason: String, hint: &'static str },
    #[error("the state file {0} is in use by another quorum process; stop it, or pass --state with another path (several instances can share a Redis server: --state redis://HOST:PORT/DB)")]
    InUse(PathBuf),
    #[error("cannot connect to Redis at {url}: {reason}. Is redis-server running there?")]
    Connect { url: String, reason: String },
    #[error("invalid state location `{0}`: expected a file path or redis://HOST[:PORT][/DB]")]
    Location(String),
    #[error("WRONGTYPE: key `{0}` holds a value of another type")]
    WrongType(String),
    #[error("the value of key `{0}` is not an integer or out of range")]
    NotInteger(String),
    #[error("state file {path}: {reason}")]
    Storage { path: PathBuf, reason: String },
    #[error("Redis: {0}")]
    Redis(String),
    #[error("stored task `{key}` is not valid JSON: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Moving a damaged file aside loses its tasks but nothing else; quorum starts a fresh one.
pub(crate) const MOVE_ASIDE: &str =
    "Move it aside (for example `mv FILE FILE.bad`) and quorum creates a fresh one, or pass --state with another path";
