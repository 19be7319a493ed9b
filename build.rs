//! Stamps the binary with its version and git commit, and rebuilds when a prompt changes
//! (prompts are embedded with `include_str!`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=prompts");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=QUORUM_VERSION={version} ({commit})");
}
