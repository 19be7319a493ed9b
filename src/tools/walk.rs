//! Walking the workspace as ripgrep does: .gitignore, .ignore and global git excludes are
//! respected (in or out of a git repository), hidden files are skipped, `.git` always, and
//! glob filters (`*.rs`, `!target/**`) narrow the walk.

use std::path::Path;

use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;

use super::ToolError;

/// Globs one request may give, and their length.
const MAX_GLOBS: usize = 64;
const MAX_GLOB_BYTES: usize = 512;

pub fn builder(root: &Path, start: &Path, globs: &[String]) -> Result<WalkBuilder, ToolError> {
    let mut builder = WalkBuilder::new(start);
    builder.hidden(true).git_ignore(true).git_exclude(true).git_global(true).require_git(false).parents(true);
    // Whatever the globs say (an override glob such as `.git` or `*` would let hidden
    // entries through): `.git`, the directory or the file a submodule or worktree has,
    // holds remote URLs with tokens and is never walked.
    builder.filter_entry(|entry| entry.file_name() != ".git");
    if globs.len() > MAX_GLOBS {
        return Err(ToolError::invalid(format!("at most {MAX_GLOBS} globs are allowed")));
    }
    if let Some(long) = globs.iter().find(|g| g.len() > MAX_GLOB_BYTES) {
        return Err(ToolError::invalid(format!(
            "a glob has {} bytes; at most {MAX_GLOB_BYTES} are allowed",
            long.len()
        )));
    }
    if !globs.is_empty() {
        let mut overrides = OverrideBuilder::new(root);
        for glob in globs {
            overrides.add(glob).map_err(|e| ToolError::invalid(format!("glob `{glob}`: {e}")))?;
        }
        builder.overrides(overrides.build().map_err(|e| ToolError::invalid(e.to_string()))?);
    }
    Ok(builder)
}

/// Threads for parallel walks: the machine's cores, at most 8.
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get().min(8)).unwrap_or(2)
}
