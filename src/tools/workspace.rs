//! The workspace root and the one rule every tool's paths obey: after resolving `..` and
//! symlinks, a path must stay inside the root. `.git` internals are never served.

use std::path::{Component, Path, PathBuf};

use super::ToolError;

/// Longest path a tool accepts (Linux's PATH_MAX).
const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    pub fn new(root: &Path) -> Result<Workspace, ToolError> {
        let root =
            root.canonicalize().map_err(|e| ToolError::NotFound(format!("workspace {}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(ToolError::invalid(format!("workspace {} is not a directory", root.display())));
        }
        Ok(Workspace { root })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path given relative to the root (or absolute, inside it) to an existing
    /// canonical path inside the root.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, ToolError> {
        if path.contains('\0') {
            return Err(ToolError::refused("the path contains a NUL byte"));
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(ToolError::invalid(format!(
                "the path has {} bytes; at most {MAX_PATH_BYTES} are allowed",
                path.len()
            )));
        }
        let given = Path::new(path);
        let joined = if given.is_absolute() { given.to_path_buf() } else { self.root.join(given) };
        // Refuse lexical escapes before touching the file system, so that `../x` is refused
        // whether or not it exists.
        let lexical = normalize(&joined);
        if !lexical.starts_with(&self.root) {
            return Err(ToolError::refused(format!("`{path}` is outside the workspace")));
        }
        let canonical = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ToolError::NotFound(format!("`{path}` does not exist in the workspace")),
            // `file.txt/x`, a name over the file system's limit, a symlink loop: the caller's path.
            std::io::ErrorKind::NotADirectory | std::io::ErrorKind::InvalidFilename => {
                ToolError::invalid(format!("`{path}` is not a path in the workspace: {e}"))
            }
            _ if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENAMETOOLONG | libc::ENOTDIR)) => {
                ToolError::invalid(format!("`{path}` is not a path in the workspace: {e}"))
            }
            std::io::ErrorKind::PermissionDenied => ToolError::refused(format!("`{path}`: {e}")),
            _ => ToolError::Io(format!("`{path}`: {e}")),
        })?;
        if !canonical.starts_with(&self.root) {
            return Err(ToolError::refused(format!("`{path}` resolves (through a symlink) outside the workspace")));
        }
        Ok(canonical)
    }

    /// Like [`Workspace::resolve`], and also refuses anything inside a `.git` directory.
    pub fn resolve_content(&self, path: &str) -> Result<PathBuf, ToolError> {
        let resolved = self.resolve(path)?;
        if self.relative(&resolved).split('/').any(|c| c == ".git") {
            return Err(ToolError::refused(format!("`{path}` is inside .git; use git_diff for history")));
        }
        Ok(resolved)
    }

    /// A path for git (`-- PATH`): relative to the root, and inside it. It need not exist
    /// (a deleted file still has a diff), but an existing one must not leave the root
    /// through a symlink.
    pub fn pathspec(&self, path: &str) -> Result<String, ToolError> {
        match self.resolve(path) {
            Ok(resolved) => Ok(self.relative(&resolved)),
            Err(ToolError::NotFound(_)) => {
                let lexical = normalize(&self.root.join(path));
                Ok(self.relative(&lexical))
            }
            Err(e) => Err(e),
        }
    }

    /// `path` relative to the root, with `/` separators ("." for the root itself).
    pub fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
            Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// Removes `.` and resolves `..` lexically (without following symlinks).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
