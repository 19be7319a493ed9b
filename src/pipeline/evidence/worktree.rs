//! Scratch git worktrees: one per candidate, starting from the workspace as it is now
//! (HEAD plus its uncommitted changes and the untracked files it does not ignore, plus the
//! patch of earlier sub-tasks), so that applying, diffing and testing a candidate never touches the
//! workspace itself. Removed on drop.

use std::path::{Path, PathBuf};

use super::memo::TreeId;
use crate::pipeline::PipelineError;

fn git(dir: &Path, args: &[&str], input: Option<&str>) -> Result<String, PipelineError> {
    crate::git::run(dir, args, input).map_err(|e| PipelineError::Workspace(e.to_string()))
}

/// Untracked files larger than this stay out of the scratch worktrees (data, not code).
const MAX_UNTRACKED_BYTES: u64 = 1024 * 1024;

/// The workspace's files, relative: tracked, and untracked but not ignored.
pub fn workspace_files(root: &Path) -> Vec<String> {
    crate::git::run(root, &["ls-files", "-co", "--exclude-standard"], None)
        .map(|out| out.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The workspace's uncommitted changes, untracked files it does not ignore included (up to
/// [`MAX_UNTRACKED_BYTES`] each), as a patch against HEAD.
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
    // A scratch index: HEAD, then every change staged, without touching the user's own.
    let dir = tempfile::tempdir().map_err(|e| PipelineError::Workspace(format!("a scratch index: {e}")))?;
    let index = dir.path().join("index");
    let staged = |args: &[&str]| {
        crate::git::run_with_index(root, Some(&index), args, None).map_err(|e| PipelineError::Workspace(e.to_string()))
    };
    staged(&["read-tree", "HEAD"])?;
    staged(&["add", "--update"])?;
    let untracked = staged(&["ls-files", "-z", "--others", "--exclude-standard"])?;
    let small: Vec<&str> = untracked
        .split('\0')
        .filter(|p| {
            !p.is_empty()
                && std::fs::metadata(root.join(p)).is_ok_and(|m| m.is_file() && m.len() <= MAX_UNTRACKED_BYTES)
        })
        .collect();
    for chunk in small.chunks(500) {
        staged(&[&["add", "--"][..], chunk].concat())?;
    }
    staged(&["diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", "HEAD"])
}

/// Applies a patch to the workspace itself (`--apply`), checking first that it applies.
pub fn apply_to(root: &Path, patch: &str) -> Result<(), PipelineError> {
    git(root, &["apply", "--check", "-"], Some(patch))?;
    git(root, &["apply", "-"], Some(patch))?;
    Ok(())
}

/// `patches`, each made against the tree of the ones before it, applied in order to a
/// scratch worktree of the workspace as it is now: its diff is them as one change.
pub fn combine(root: &Path, patches: &[String]) -> Result<Scratch, PipelineError> {
    let mut scratch = Scratch::create(root, &[&workspace_patch(root)?])?;
    for patch in patches {
        scratch.apply(patch)?;
    }
    Ok(scratch)
}

/// What a scratch worktree of `root` with `layers` applied is made of, without making it.
pub fn tree_of(root: &Path, layers: &[String]) -> Result<TreeId, PipelineError> {
    let head = git(root, &["rev-parse", "--verify", "HEAD"], None)?;
    Ok(layers.iter().fold(TreeId::at(&head), |tree, layer| tree.then(layer)))
}

pub struct Scratch {
    repo: PathBuf,
    path: PathBuf,
    /// The tree the candidate's diff is taken against.
    base: String,
    /// What the tree is made of: HEAD and the patches applied with [`Scratch::apply`].
    id: TreeId,
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
        let head = git(&path, &["rev-parse", "HEAD"], None)?;
        let mut scratch =
            Scratch { repo: repo.to_path_buf(), path, base: String::new(), id: TreeId::at(&head), _dir: dir };
        for patch in patches {
            scratch.apply(patch)?;
        }
        git(&scratch.path, &["add", "-A"], None)?;
        scratch.base = git(&scratch.path, &["write-tree"], None)?.trim().to_string();
        Ok(scratch)
    }

    /// Applies a patch (on top of the base, once it is taken: the diff then includes it).
    pub fn apply(&mut self, patch: &str) -> Result<(), PipelineError> {
        if patch.trim().is_empty() {
            return Ok(());
        }
        git(&self.path, &["apply", "--binary", "-"], Some(patch))?;
        self.id = self.id.then(patch);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the tree is made of, changes written to its files since excepted.
    pub fn id(&self) -> TreeId {
        self.id
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_trees_see_changes_and_untracked_files_and_the_index_stays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        for args in [&["init", "-q"][..], &["add", "."], &["commit", "-q", "-m", "a"]] {
            git(&root, args, None).unwrap();
        }
        std::fs::write(root.join("a.py"), "x = 2\n").unwrap();
        std::fs::create_dir(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/new.py"), "y = 3\n").unwrap();
        std::fs::write(root.join("run.log"), "ignored\n").unwrap();
        std::fs::write(root.join("big.bin"), vec![b'z'; MAX_UNTRACKED_BYTES as usize + 1]).unwrap();
        let status = || git(&root, &["status", "--porcelain"], None).unwrap();
        let before = status();

        let patch = workspace_patch(&root).unwrap();
        let scratch = Scratch::create(&root, &[&patch]).unwrap();
        let read = |p: &str| std::fs::read_to_string(scratch.path().join(p)).ok();
        assert_eq!(read("a.py").as_deref(), Some("x = 2\n"));
        assert_eq!(read("pkg/new.py").as_deref(), Some("y = 3\n"));
        assert_eq!(read("run.log"), None, "ignored files stay out");
        assert!(!scratch.path().join("big.bin").exists(), "large untracked files stay out");
        assert_eq!(scratch.diff().unwrap(), "", "the workspace's own state is the candidates' base");
        assert_eq!(scratch.id(), tree_of(&root, &[patch]).unwrap());
        assert_eq!(status(), before, "the user's index is untouched");
        assert!(before.contains("?? pkg/"), "{before}");
    }
}
