//! Walking the workspace as ripgrep does: .gitignore, .ignore and global git excludes are
//! respected (in or out of a git repository), hidden files and `.git` are skipped, and
//! glob filters (`*.rs`, `!target/**`) narrow the walk.

use std::path::Path;

use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;

use super::ToolError;

pub fn builder(root: &Path, start: &Path, globs: &[String]) -> Result<WalkBuilder, ToolError> {
    let mut builder = WalkBuilder::new(start);
    builder.hidden(true).git_ignore(true).git_exclude(true).git_global(true).require_git(false).parents(true);
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
