//! What kind of project a directory is: its build files and the test commands they imply.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The test runners `run_tests` may start; nothing else can be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TestCommand {
    #[serde(rename = "cargo test")]
    Cargo,
    #[serde(rename = "pytest")]
    Pytest,
    #[serde(rename = "npm test")]
    Npm,
    #[serde(rename = "go test")]
    Go,
}

impl TestCommand {
    pub fn label(self) -> &'static str {
        match self {
            TestCommand::Cargo => "cargo test",
            TestCommand::Pytest => "pytest",
            TestCommand::Npm => "npm test",
            TestCommand::Go => "go test",
        }
    }

    /// The runner of the language a file is written in, if it has one of the four.
    pub fn for_file(path: &str) -> Option<TestCommand> {
        let ext = path.rsplit_once('.').map(|(_, ext)| ext)?;
        match ext {
            "py" | "pyi" => Some(TestCommand::Pytest),
            "rs" => Some(TestCommand::Cargo),
            "go" => Some(TestCommand::Go),
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" => Some(TestCommand::Npm),
            _ => None,
        }
    }
}

/// Files that say how a project builds, by name.
pub const BUILD_FILES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "go.mod",
    "Makefile",
    "CMakeLists.txt",
    "meson.build",
    "build.gradle",
    "build.gradle.kts",
    "pom.xml",
    "BUILD.bazel",
    "Gemfile",
];

/// The test commands a directory's files imply, most specific first.
pub fn test_commands(dir: &Path) -> Vec<TestCommand> {
    let has = |name: &str| dir.join(name).exists();
    let mut commands = Vec::new();
    if has("Cargo.toml") {
        commands.push(TestCommand::Cargo);
    }
    if has("go.mod") {
        commands.push(TestCommand::Go);
    }
    if has("package.json") && npm_has_tests(&dir.join("package.json")) {
        commands.push(TestCommand::Npm);
    }
    let python =
        ["pytest.ini", "pyproject.toml", "setup.py", "setup.cfg", "tox.ini", "conftest.py"].iter().any(|f| has(f))
            || has_python_tests(&dir.join("tests"))
            || has_python_tests(dir);
    if python {
        commands.push(TestCommand::Pytest);
    }
    commands
}

/// npm's placeholder (`echo "Error: no test specified" && exit 1`) is not a test suite.
fn npm_has_tests(package: &Path) -> bool {
    // A FIFO named package.json would block the read.
    if !package.is_file() {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(package) else { return false };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { return false };
    json["scripts"]["test"].as_str().is_some_and(|t| !t.contains("no test specified"))
}

/// Whether a workspace path (relative, `/`-separated) is a test file by the conventions
/// of the runners above.
pub fn is_test_file(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    let in_test_dir = parts.iter().any(|d| matches!(*d, "test" | "tests" | "__tests__"));
    let python =
        name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py") || name == "conftest.py");
    let js = [".test.", ".spec."].iter().any(|m| name.contains(m));
    in_test_dir || python || js || name.ends_with("_test.go")
}

/// Whether a workspace path is generated, vendored or packaging output that no change is
/// made in: build and packaging directories (`build/`, `dist/`, `*.egg-info/`, `target/`,
/// `node_modules/`, virtual environments, caches) and lock files. Sdists and crates ship
/// these without the `.gitignore` that would hide them.
pub fn is_generated(path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    let generated_dir = |d: &&str| {
        matches!(
            *d,
            "build" | "dist" | "target" | "node_modules" | "vendor" | "__pycache__" | ".venv" | "venv" | ".tox"
        ) || d.ends_with(".egg-info")
            || d.ends_with(".dist-info")
    };
    let lock = name.ends_with(".lock") || matches!(name, "package-lock.json" | "pnpm-lock.yaml" | "go.sum");
    parts.iter().any(generated_dir) || lock || name == "PKG-INFO" || name.ends_with(".pyc")
}

fn has_python_tests(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
    })
}

#[cfg(test)]
mod tests {
    use super::{is_generated, is_test_file};

    #[test]
    fn build_packaging_and_lock_files_are_generated() {
        for path in ["pkg.egg-info/SOURCES.txt", "build/lib/pkg/core.py", "dist/x.tar.gz", "Cargo.lock", "PKG-INFO"] {
            assert!(is_generated(path), "{path}");
        }
        for path in ["pkg/__init__.py", "src/build.rs", "builder/app.py", "docs/distribution.md", "lockfile.py"] {
            assert!(!is_generated(path), "{path}");
        }
    }

    #[test]
    fn test_files_are_recognized_by_runner_conventions() {
        for path in [
            "tests/test_calc.py",
            "test_solution.py",
            "pkg/calc_test.py",
            "conftest.py",
            "src/app.test.ts",
            "web/__tests__/a.js",
            "x/y_test.go",
            "tests/fixtures/data.json",
        ] {
            assert!(is_test_file(path), "{path}");
        }
        for path in ["calc.py", "src/testing_utils.rs", "contest.py", "src/attest.go", "latest/app.py"] {
            assert!(!is_test_file(path), "{path}");
        }
    }
}
