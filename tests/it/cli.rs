//! The command line: streaming chat and errors that say how to fix them.

use std::process::Command;

use super::support::{quorum_bin, smollm};

#[test]
fn chat_streams_an_answer_to_stdout() {
    let out = Command::new(quorum_bin())
        .args(["chat", "--role", "coder", "--max-tokens", "16", "--temperature", "0", "--model"])
        .arg(format!("all={}", smollm().display()))
        .arg("Say hello to the world.")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.trim().len() > 3, "answer on stdout: {stdout:?}");
    // llama.cpp's own logs go through tracing, filtered to warnings by default.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("llama_model_loader"), "llama.cpp logs leaked: {stderr}");
}

#[test]
fn a_missing_model_prints_one_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        Command::new(quorum_bin()).args(["serve", "--port", "0", "--models-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(stderr.contains("quorum models pull --profile small"), "{stderr}");
}

#[test]
fn a_bad_flag_is_explained() {
    let out = Command::new(quorum_bin()).args(["chat", "--role", "writer", "hi"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown role `writer`"), "{stderr}");
}

#[test]
fn models_are_found_in_quorums_cache_from_any_directory() {
    let (cache, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir_all(cache.path().join("models")).unwrap();
    let gemma = super::support::repo_root().join("models/gemma-3-270m-q4_k_m.gguf").canonicalize().unwrap();
    std::os::unix::fs::symlink(gemma, cache.path().join("models/gemma-3-270m-q4_k_m.gguf")).unwrap();
    let out = Command::new(quorum_bin())
        .args(["models", "list", "--profile", "small"])
        .env("QUORUM_CACHE", cache.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&cache.path().join("models").display().to_string()), "{stdout}");
    assert_eq!(stdout.matches("missing").count(), 6, "the preprocessor's file in the cache is found: {stdout}");
}

#[test]
fn models_list_shows_each_role() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(quorum_bin()).args(["models", "list", "--models-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for role in ["preprocessor", "planner", "coder", "voter", "reviewer", "coder draft", "reviewer draft"] {
        assert!(stdout.contains(role), "{stdout}");
    }
    assert_eq!(stdout.matches("missing").count(), 7, "five roles and two drafts: {stdout}");
}
