//! `quorum spec init`: spec-kit set up in a workspace by the user's own `specify` CLI,
//! with its generic integration writing the command templates where quorum reads them.

use std::path::Path;

use super::SpecError;
use crate::tools::speckit::COMMANDS_DIR;

const INSTALL: &str = "install spec-kit's CLI first: `uv tool install specify-cli` (or `pipx install specify-cli`, \
or `pip install specify-cli`), then run `quorum spec init` again";

/// Runs `specify init --here` in `root` (the program `specify`, or the one named by
/// `QUORUM_SPECIFY`); answers what it printed last.
pub async fn init(root: &Path) -> Result<String, SpecError> {
    let program = std::env::var("QUORUM_SPECIFY").unwrap_or_else(|_| "specify".into());
    let mut command = tokio::process::Command::new(&program);
    command
        .args(["init", "--here", "--force", "--integration", "generic"])
        .arg(format!("--integration-options=--commands-dir {COMMANDS_DIR}/"))
        .args(["--script", "sh", "--ignore-agent-tools"])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match command.output().await {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecError::Setup(format!("`{program}` was not found: {INSTALL}")))
        }
        Err(e) => return Err(SpecError::Setup(format!("`{program}` could not run: {e}"))),
    };
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(SpecError::Setup(format!("`{program} init` failed: {}", tail.join("\n"))));
    }
    if crate::tools::speckit::commands_dir(root).is_none() {
        return Err(SpecError::Setup(format!("`{program} init` ran but wrote no commands under {COMMANDS_DIR}")));
    }
    Ok(format!("spec-kit is set up in {} (commands in {COMMANDS_DIR}/)", root.display()))
}
