//! Scratch git worktrees: one per candidate, starting from the workspace as it is now
//! (HEAD plus its uncommitted changes to tracked files, plus the patch of earlier
//! sub-tasks), so that applying, diffing and testing a candidate never touches the
//! workspace itself. Removed on drop.

use std::path::{Path, PathBuf};

use crate::pipeline::PipelineError;

fn git(dir: &Path, args: &[&str], input: Option<&str>) -> Result<String, PipelineError> {
    crate::git::run(dir, args, input).map_err(|e| PipelineError::Workspace(e.to_string()))
}

/// The workspace's uncommitted changes to tracked files, as a patch.
pub fn workspace_patch(root: &Path) -> Result<String, PipelineError> {
    git(root, &["rev-parse", "--verify", "HEAD"], None).map_err(|_| {
        PipelineError::Workspace("the pipeline needs a git repository with a commit (git init; git commit)".into())
    })?;
    // Worktrees hold the whole repository: the workspace must be its top, or paths disagree.
    let top = git(root, &["rev-parse", "--show-toplevel"], None)?;
    if Path::new(top.trim()).canonicalize().ok().as_deref() != Some(root) {
        return Err(PipelineError::Workspace(format!(
            "the workspace must be the top of its git repository ({})",
            top.trim()
        )));
    }
    git(root, &["diff", "--binary", "--no-ext-diff", "--no-textconv", "HEAD"], None)
}

/// Applies a patch to the workspace itself (`--apply`), checking first that it applies.
pub fn apply_to(root: &Path, patch: &str) -> Result<(), PipelineError> {
    git(root, &["apply", "--check", "-"], Some(patch))?;
    git(root, &["apply", "-"], Some(patch))?;
    Ok(())
}

pub struct Scratch {
    repo: PathBuf,
    path: PathBuf,
    /// The tree the candidate's diff is taken against.
    base: String,
    _dir: tempfile::TempDir,
}

impl Scratch {
    /// A detached worktree of `repo` at HEAD with `patches` applied in order.
    pub fn create(repo: &Path, patches: &[&str]) -> Result<Scratch, PipelineError> {
        let dir = tempfile::Builder::new()
            .prefix("quorum-candidate-")
            .tempdir()
            .map_err(|e| PipelineError::Workspace(format!("cannot create a scratch directory: {e}")))?;
        let path = dir.path().join("tree");
        let path_str = path.to_string_lossy().into_owned();
        git(repo, &["worktree", "add", "--detach", "-q", &path_str, "HEAD"], None)?;
        let mut scratch = Scratch { repo: repo.to_path_buf(), path, base: String::new(), _dir: dir };
        for patch in patches.iter().filter(|p| !p.trim().is_empty()) {
            git(&scratch.path, &["apply", "--binary", "-"], Some(patch))?;
        }
        git(&scratch.path, &["add", "-A"], None)?;
        scratch.base = git(&scratch.path, &["write-tree"], None)?.trim().to_string();
        Ok(scratch)
    }

    /// Applies a patch on top of the base (the diff then includes it).
    pub fn apply(&self, patch: &str) -> Result<(), PipelineError> {
        if patch.trim().is_empty() {
            return Ok(());
        }
        git(&self.path, &["apply", "--binary", "-"], Some(patch)).map(|_| ())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything changed since the base, new files included, as a unified diff.
    pub fn diff(&self) -> Result<String, PipelineError> {
        git(&self.path, &["add", "-A"], None)?;
        git(&self.path, &["diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", &self.base], None)
    }

    /// Paths changed since the base.
    pub fn changed(&self) -> Result<Vec<String>, PipelineError> {
        git(&self.path, &["add", "-A"], None)?;
        Ok(git(&self.path, &["diff", "--cached", "--name-only", &self.base], None)?
            .lines()
            .map(str::to_string)
            .collect())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let path = self.path.to_string_lossy().into_owned();
        if let Err(e) = git(&self.repo, &["worktree", "remove", "--force", &path], None) {
            tracing::warn!(error = %e, "removing a scratch worktree failed");
        }
    }
}
