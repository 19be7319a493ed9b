//! Many workspaces behind one server: the default one, and any directory under the
//! configured roots (`workspaces = ["~/src"]`), named by a request as a path or as a name
//! under a root. Everything else is refused, so that a client cannot point the tools (and
//! `run_tests`) at an arbitrary directory of the machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{ToolError, Tools, Workspace};

/// Most workspaces kept open at once; past it the cache starts over (opening is cheap).
const MAX_OPEN: usize = 64;
/// Most names [`Workspaces::names`] lists (the repositories directly under the roots).
const MAX_NAMES: usize = 100;

/// The registry of workspaces: cheap to clone.
#[derive(Clone)]
pub struct Workspaces(Arc<Inner>);

struct Inner {
    default: Tools,
    roots: Vec<PathBuf>,
    open: Mutex<HashMap<PathBuf, Tools>>,
}

impl Workspaces {
    /// The default workspace and the roots under which requests may name others; a root
    /// that does not exist is an error (a typo would otherwise refuse everything).
    pub fn new(default: Tools, roots: &[PathBuf]) -> Result<Workspaces, ToolError> {
        let roots = roots
            .iter()
            .map(|r| {
                let expanded = expand_home(r);
                expanded.canonicalize().map_err(|e| ToolError::NotFound(format!("workspace root {}: {e}", r.display())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workspaces(Arc::new(Inner { default, roots, open: Mutex::default() })))
    }

    pub fn default_tools(&self) -> &Tools {
        &self.0.default
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.0.roots
    }

    /// The tools of the workspace `name` names: empty for the default one; an absolute
    /// path, or `~/...`; otherwise a path relative to the first root that has it.
    pub fn open(&self, name: &str) -> Result<Tools, ToolError> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(self.0.default.clone());
        }
        if name.contains('\0') || name.len() > 4096 {
            return Err(ToolError::invalid("the workspace name is not a path"));
        }
        let given = expand_home(Path::new(name));
        let candidate = if given.is_absolute() {
            given
        } else {
            let found = self.0.roots.iter().map(|r| r.join(&given)).find(|p| p.is_dir());
            found.ok_or_else(|| self.unknown(name))?
        };
        let canonical = candidate.canonicalize().map_err(|_| self.unknown(name))?;
        if canonical == self.0.default.workspace().root() {
            return Ok(self.0.default.clone());
        }
        if !self.0.roots.iter().any(|r| canonical.starts_with(r)) {
            return Err(ToolError::refused(format!(
                "workspace `{name}` is outside this server's workspaces ({})",
                self.describe_roots()
            )));
        }
        let mut open = self.0.open.lock().expect("workspaces lock");
        if let Some(tools) = open.get(&canonical) {
            return Ok(tools.clone());
        }
        let tools = Tools::new(Workspace::new(&canonical)?);
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(canonical, tools.clone());
        Ok(tools)
    }

    /// The git repositories directly under the roots, by directory name (the first root
    /// wins a name), sorted: what `quorum@NAME` can name.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for root in &self.0.roots {
            let Ok(entries) = std::fs::read_dir(root) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
                if path.join(".git").exists() && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        names.truncate(MAX_NAMES);
        names
    }

    fn unknown(&self, name: &str) -> ToolError {
        ToolError::NotFound(format!("no workspace `{name}` under this server's workspaces ({})", self.describe_roots()))
    }

    fn describe_roots(&self) -> String {
        let default = self.0.default.workspace().root().display().to_string();
        if self.0.roots.is_empty() {
            return format!("only {default}; set `workspaces = [...]` in the config to serve more");
        }
        let roots: Vec<String> = self.0.roots.iter().map(|r| format!("{}/", r.display())).collect();
        format!("{default} and anything under {}", roots.join(", "))
    }
}

/// One workspace and no roots: what the CLI and tests that work on one repository use.
impl From<Tools> for Workspaces {
    fn from(default: Tools) -> Workspaces {
        Workspaces(Arc::new(Inner { default, roots: Vec::new(), open: Mutex::default() }))
    }
}

/// `~` and `~/x` to the home directory; anything else as given.
fn expand_home(path: &Path) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else { return path.to_path_buf() };
    match dirs::home_dir() {
        Some(home) => home.join(rest),
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.join(".git")).unwrap();
        path
    }

    fn setup() -> (tempfile::TempDir, Workspaces) {
        let dir = tempfile::tempdir().unwrap();
        let default = repo(dir.path(), "default");
        let root = dir.path().join("src");
        repo(&root, "alpha");
        repo(&root, "beta");
        std::fs::create_dir_all(root.join("plain")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        let tools = Tools::new(Workspace::new(&default).unwrap());
        let workspaces = Workspaces::new(tools, &[root]).unwrap();
        (dir, workspaces)
    }

    #[test]
    fn names_paths_and_the_default_open() {
        let (dir, ws) = setup();
        let root = dir.path().join("src").canonicalize().unwrap();
        assert_eq!(ws.open("alpha").unwrap().workspace().root(), root.join("alpha"));
        let by_path = ws.open(root.join("beta").to_str().unwrap()).unwrap();
        assert_eq!(by_path.workspace().root(), root.join("beta"));
        assert_eq!(ws.open("").unwrap().workspace().root(), ws.default_tools().workspace().root());
        let default = ws.default_tools().workspace().root().to_str().unwrap().to_string();
        assert_eq!(ws.open(&default).unwrap().workspace().root(), ws.default_tools().workspace().root());
        assert_eq!(ws.names(), vec!["alpha", "beta"]);
    }

    #[test]
    fn anything_outside_the_roots_is_refused() {
        let (dir, ws) = setup();
        let outside = dir.path().join("outside");
        assert!(matches!(ws.open(outside.to_str().unwrap()), Err(ToolError::Refused(_))));
        assert!(matches!(ws.open("/"), Err(ToolError::Refused(_))));
        // `..` out of a root resolves outside it.
        assert!(matches!(ws.open("alpha/../../outside"), Err(ToolError::Refused(_))));
        assert!(matches!(ws.open("missing"), Err(ToolError::NotFound(_))));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, dir.path().join("src/link")).unwrap();
            assert!(matches!(ws.open("link"), Err(ToolError::Refused(_))));
        }
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tools = Tools::new(Workspace::new(dir.path()).unwrap());
        assert!(Workspaces::new(tools, &[dir.path().join("nope")]).is_err());
    }
}
