//! Shared test helpers.

use std::path::PathBuf;

use quorum::config::{Config, ConfigFile, Overrides};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fastest real model, used for every role in these tests.
pub fn smollm() -> PathBuf {
    let path = repo_root().join("models/smollm2-135m-instruct-q4_1.gguf");
    assert!(path.exists(), "{} is missing: run scripts/fetch-small-models.sh", path.display());
    path
}

/// A config with every role on SmolLM2 (the same file: loaded once).
pub fn smollm_config() -> Config {
    let overrides = Overrides { models: vec![format!("all={}", smollm().display())], ..Default::default() };
    Config::resolve(ConfigFile::default(), overrides).expect("valid config")
}

pub fn quorum_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quorum"))
}
