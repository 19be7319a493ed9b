//! The only way a spec-kit command writes: into the folders it may write (the feature's
//! directory under `specs/`, `.specify/memory/`), whole files replaced at once.

use std::path::{Component, Path, PathBuf};

use super::SpecError;

#[derive(Debug, Clone)]
pub struct Writable {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

impl Writable {
    /// The feature's directory (which must be under `specs/`) and the project's memory.
    pub fn feature(root: &Path, feature_dir: &Path) -> Result<Writable, SpecError> {
        let dir = relative(root, feature_dir)?;
        if !dir.starts_with("specs") || dir.components().count() < 2 {
            return Err(SpecError::Refused(format!("the feature directory {} is not under specs/", dir.display())));
        }
        Ok(Writable { root: root.to_path_buf(), allowed: vec![dir, PathBuf::from(".specify/memory")] })
    }

    /// The project's memory only (`constitution`).
    pub fn memory(root: &Path) -> Writable {
        Writable { root: root.to_path_buf(), allowed: vec![PathBuf::from(".specify/memory")] }
    }

    /// Also `file` (relative to the root), as `specify` records the feature it made.
    pub fn and(mut self, file: &str) -> Writable {
        self.allowed.push(PathBuf::from(file));
        self
    }

    /// Writes `text` to `path` (absolute, or relative to the root) if it may; answers
    /// the path relative to the root.
    pub fn write(&self, path: &Path, text: &str) -> Result<String, SpecError> {
        let rel = relative(&self.root, path)?;
        if !self.allowed.iter().any(|a| rel.starts_with(a)) {
            return Err(SpecError::Refused(format!("this command may not write {}", rel.display())));
        }
        let target = self.root.join(&rel);
        let parent = target.parent().expect("a file has a parent");
        std::fs::create_dir_all(parent).map_err(|e| SpecError::Io(format!("{}: {e}", parent.display())))?;
        // A link inside the workspace must not lead out of it.
        let real_root = self.root.canonicalize().map_err(|e| SpecError::Io(e.to_string()))?;
        let real_parent = parent.canonicalize().map_err(|e| SpecError::Io(e.to_string()))?;
        if !real_parent.starts_with(&real_root) {
            return Err(SpecError::Refused(format!("{} leads out of the workspace", rel.display())));
        }
        let temp = parent.join(format!(".{}.quorum-tmp", target.file_name().unwrap_or_default().to_string_lossy()));
        std::fs::write(&temp, text).map_err(|e| SpecError::Io(format!("{}: {e}", temp.display())))?;
        std::fs::rename(&temp, &target).map_err(|e| SpecError::Io(format!("{}: {e}", target.display())))?;
        Ok(rel.display().to_string())
    }
}

/// `path` relative to `root`, refused when it leaves it.
fn relative(root: &Path, path: &Path) -> Result<PathBuf, SpecError> {
    let rel = match path.strip_prefix(root) {
        Ok(rel) => rel.to_path_buf(),
        Err(_) if path.is_relative() => path.to_path_buf(),
        // Scripts answer canonical paths (a /tmp link resolved, say).
        Err(_) => {
            let real = root.canonicalize().map_err(|e| SpecError::Io(e.to_string()))?;
            path.strip_prefix(&real)
                .map(Path::to_path_buf)
                .map_err(|_| SpecError::Refused(format!("{} is outside the workspace", path.display())))?
        }
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(SpecError::Refused(format!("{} is outside the workspace", path.display())));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_only_where_the_command_may() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let feature = Writable::feature(root, &root.join("specs/001-json")).unwrap();
        assert_eq!(feature.write(&root.join("specs/001-json/plan.md"), "plan").unwrap(), "specs/001-json/plan.md");
        assert_eq!(std::fs::read_to_string(root.join("specs/001-json/plan.md")).unwrap(), "plan");
        feature.write(Path::new(".specify/memory/constitution.md"), "c").unwrap();
        for refused in ["src/main.py", "specs/002-other/spec.md", "specs/001-json/../../x.md", "/etc/passwd"] {
            assert!(matches!(feature.write(Path::new(refused), "x"), Err(SpecError::Refused(_))), "{refused}");
        }
        assert!(Writable::memory(root).write(Path::new("specs/001-json/plan.md"), "x").is_err());
        assert!(Writable::feature(root, &root.join("src")).is_err());
        assert!(!root.join("src").exists());
    }
}
