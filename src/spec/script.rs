//! Runs one of spec-kit's helper scripts the way its templates say: from the workspace
//! root, `bash SCRIPT ARGS...` with no shell line built from anyone's text (the user's
//! words are one argument), bounded in time, and its JSON answer parsed.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::SpecError;
use crate::tools::speckit::{ScriptCall, USER_ARGUMENTS};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The script's JSON object (`FEATURE_DIR`, `IMPL_PLAN`, ...).
pub async fn run(root: &Path, call: &ScriptCall, arguments: &str) -> Result<Map<String, Value>, SpecError> {
    let scripts = root.join(".specify/scripts").canonicalize().map_err(|e| SpecError::Script {
        script: call.path.clone(),
        message: format!("the workspace has no .specify/scripts: {e}"),
    })?;
    let path = root
        .join(&call.path)
        .canonicalize()
        .map_err(|e| SpecError::Script { script: call.path.clone(), message: format!("cannot find it: {e}") })?;
    if !path.starts_with(&scripts) {
        return Err(SpecError::Refused(format!("{} is not one of spec-kit's scripts", call.path)));
    }
    let args = call.args.iter().map(|a| if a == USER_ARGUMENTS { arguments } else { a.as_str() });
    let mut command = tokio::process::Command::new("bash");
    command.arg(&path).args(args).current_dir(root).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .map_err(|_| SpecError::Script { script: call.path.clone(), message: format!("ran past {TIMEOUT:?}") })?
        .map_err(|e| SpecError::Script { script: call.path.clone(), message: e.to_string() })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr.lines().chain(stdout.lines()).filter(|l| !l.trim().is_empty()).take(4).collect::<Vec<_>>();
        return Err(SpecError::Script { script: call.path.clone(), message: said.join(" / ") });
    }
    // The JSON is one line among what the script prints ("Copied plan template ..." too).
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str::<Map<String, Value>>(l.trim()).ok())
        .ok_or_else(|| SpecError::Script { script: call.path.clone(), message: "printed no JSON object".into() })
}
