//! Tests at repository scale: which of the workspace's tests exercise a step's change
//! ([`select`]), run once on the untouched tree ([`Baseline`]) so that failures already
//! there count against no candidate, and a candidate's time limit taken from that run.

use std::path::Path;

use crate::pipeline::excerpt::mentions;
use crate::pipeline::heuristics;
use crate::tools::{is_test_file, test_commands, TestCommand};

/// Test files selected, at most (beyond it, the whole suite runs).
const MAX_TEST_FILES: usize = 60;

/// The tests a step's candidates run: a runner, and the files (pytest) or the package and
/// test names (cargo) they are limited to; none means the whole suite.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Selection {
    pub command: TestCommand,
    pub paths: Vec<String>,
    pub package: Option<String>,
    /// cargo only: the package's tests whose names contain one of these (none: all of them).
    pub names: Vec<String>,
}

impl Selection {
    /// Whether the whole suite runs: nothing narrowed it down.
    pub fn is_whole(&self) -> bool {
        self.paths.is_empty() && self.package.is_none()
    }

    pub fn describe(&self) -> String {
        let nodes = self.paths.iter().filter(|p| p.contains("::")).count();
        match (&self.package, self.paths.len()) {
            (Some(p), _) if self.names.is_empty() => format!("{} -p {p}", self.command.label()),
            (Some(p), _) => format!("{} -p {p} on {} test name(s)", self.command.label(), self.names.len()),
            (None, 0) => format!("{} (the whole suite)", self.command.label()),
            (None, n) if nodes == 0 => format!("{} on {n} test file(s)", self.command.label()),
            (None, n) => format!("{} on {n} test(s) and file(s)", self.command.label()),
        }
    }
}

/// The tests of the workspace at `root` (files relative in `files`) that exercise a change
/// to `step_files` for `task`: the runner of their language; for Python, the test files
/// that mention what the task names in them (or, naming nothing, their modules); for
/// Rust, the package that holds them and its tests that mention what the task names. None
/// when the workspace has no tests of their language.
pub fn select(root: &Path, step_files: &[String], task: &str, files: &[String]) -> Option<Selection> {
    let available = test_commands(root);
    let languages: Vec<TestCommand> = step_files.iter().filter_map(|f| TestCommand::for_file(f)).collect();
    // Another language's tests say nothing about these files (cargo test for a Python file).
    let command = match languages.is_empty() {
        true => available.first().copied(),
        false => languages.into_iter().find(|c| available.contains(c)),
    }?;
    let mut selection = Selection { command, paths: Vec::new(), package: None, names: Vec::new() };
    match command {
        TestCommand::Pytest => selection.paths = python_tests(root, step_files, task, files),
        TestCommand::Cargo => {
            if let Some(package) = step_files.iter().find_map(|f| cargo_package(root, f)) {
                selection.names = rust_tests(root, &package, step_files, task, files);
                selection.package = Some(package);
            }
        }
        TestCommand::Npm | TestCommand::Go => {}
    }
    Some(selection)
}

/// The test files that mention what the task names in the step's files, narrowed to their
/// tests that do ([`test_nodes`]); naming nothing there, the files that mention the
/// step's modules.
fn python_tests(root: &Path, step_files: &[String], task: &str, files: &[String]) -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_default();
    let sources: Vec<String> = step_files.iter().filter(|f| f.ends_with(".py")).map(|f| read(f)).collect();
    let terms = heuristics::terms(task);
    let in_sources = |n: &String| sources.iter().any(|s| mentions(s, n));
    // Builtins the task's examples call (`list`, `range`): nearly every test mentions them.
    let builtin = |s: &String| heuristics::PYTHON_BUILTINS.contains(&s.as_str());
    let symbols: Vec<String> = terms.symbols.into_iter().filter(|s| !builtin(s)).filter(in_sources).collect();
    let mut names: Vec<String> = symbols.iter().cloned().chain(terms.words.into_iter().filter(in_sources)).collect();
    let named = !names.is_empty();
    if !named {
        names = step_files.iter().filter_map(|f| module_name(f)).collect();
    }
    if names.is_empty() {
        return Vec::new();
    }
    let mut tests: Vec<String> = files
        .iter()
        .filter(|f| f.ends_with(".py") && is_test_file(f) && !f.ends_with("conftest.py"))
        .filter(|f| !step_files.contains(f))
        .filter(|f| {
            let text = read(f);
            names.iter().any(|n| mentions(&text, n))
        })
        .cloned()
        .collect();
    tests.sort();
    if tests.len() > MAX_TEST_FILES {
        tests.clear();
    }
    // A module's name is in its test files' imports, not in their tests.
    if !named {
        return tests;
    }
    // The task's identifiers pick tests better than its plain words, which many mention.
    let by = if symbols.is_empty() { &names } else { &symbols };
    let nodes: Vec<String> = tests.iter().flat_map(|path| test_nodes(path, &read(path), by)).collect();
    if nodes.len() > MAX_TEST_NODES {
        return tests;
    }
    nodes
}

/// Tests selected by pytest node id, at most (beyond it, their files run whole).
const MAX_TEST_NODES: usize = 200;

/// The tests of the test file `path` that mention one of `names`, as pytest node ids: its
/// top-level test functions, and its classes that pytest collects (named `Test*`, or
/// derived from a base and holding `test` methods). The file itself where none of them
/// does (it was chosen by its imports) or where it has none to tell apart.
fn test_nodes(path: &str, text: &str, names: &[String]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = statements(&lines);
    let mut nodes = Vec::new();
    let mut tests = 0;
    for (k, &start) in top.iter().enumerate() {
        let end = top.get(k + 1).copied().unwrap_or(lines.len());
        let body = &lines[start..end];
        let Some(name) = collected(body) else { continue };
        tests += 1;
        if body.iter().any(|line| names.iter().any(|n| mentions(line, n))) {
            nodes.push(format!("{path}::{name}"));
        }
    }
    if nodes.is_empty() || nodes.len() == tests {
        return vec![path.to_string()];
    }
    nodes
}

/// The lines that start top-level statements (decorators belong to what follows them),
/// outside triple-quoted strings, whose lines may start at column 0 too.
fn statements(lines: &[&str]) -> Vec<usize> {
    let mut in_string = false;
    let mut starts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !in_string && line.starts_with(|c: char| c.is_alphabetic() || c == '_') {
            starts.push(i);
        }
        let quotes = line.matches("\"\"\"").count() + line.matches("'''").count();
        in_string ^= quotes % 2 == 1;
    }
    starts
}

/// The name of the test a top-level block defines, where pytest collects it.
fn collected<'a>(block: &[&'a str]) -> Option<&'a str> {
    fn name_of(rest: &str) -> Option<&str> {
        rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().filter(|n| !n.is_empty())
    }
    let head = block[0];
    if let Some(rest) = head.strip_prefix("def ").or_else(|| head.strip_prefix("async def ")) {
        return name_of(rest).filter(|n| n.starts_with("test"));
    }
    let rest = head.strip_prefix("class ")?;
    let name = name_of(rest)?;
    let derived = rest[name.len()..].trim_start().starts_with("(") && !rest.contains("(object)");
    let has_tests =
        block.iter().any(|l| l.trim_start().starts_with("def test") || l.trim_start().starts_with("async def test"));
    (name.starts_with("Test") || (derived && has_tests)).then_some(name)
}

/// The name a Python file is imported by (its package's for `__init__.py`).
fn module_name(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".py")?;
    let last = stem.rsplit('/').next()?;
    let name = if last == "__init__" { stem.rsplit('/').nth(1)? } else { last };
    (name.len() >= 3).then(|| name.to_string())
}

/// The tests of `package` (unit tests beside its code, and its `tests/`) that mention what
/// the task names in the step's Rust files, by name; none where the task names nothing
/// there, no test mentions it, or too many do (then the whole package runs).
fn rust_tests(root: &Path, package: &str, step_files: &[String], task: &str, files: &[String]) -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_default();
    let sources: Vec<String> = step_files.iter().filter(|f| f.ends_with(".rs")).map(|f| read(f)).collect();
    let symbols: Vec<String> =
        heuristics::terms(task).symbols.into_iter().filter(|s| sources.iter().any(|t| mentions(t, s))).collect();
    if symbols.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<String> = files
        .iter()
        .filter(|f| f.ends_with(".rs") && cargo_package(root, f).as_deref() == Some(package))
        .flat_map(|f| rust_test_fns(&read(f), &symbols))
        .collect();
    names.sort();
    names.dedup();
    if names.len() > MAX_TEST_NODES {
        names.clear();
    }
    names
}

/// The test functions of a Rust file (`#[test]`, `#[tokio::test]`) whose bodies mention
/// one of `symbols`. Braces are counted without reading strings: a test whose strings hold
/// unbalanced braces may take in the next one, which only selects a test more.
fn rust_test_fns(text: &str, symbols: &[String]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let attribute = lines[i].trim();
        let is_test = attribute.starts_with("#[")
            && attribute[2..].split(['(', ']']).next().is_some_and(|path| path == "test" || path.ends_with("::test"));
        i += 1;
        if !is_test {
            continue;
        }
        let Some(head) = (i..lines.len()).find(|&k| !lines[k].trim().starts_with("#[")) else { break };
        let Some(name) = lines[head].split("fn ").nth(1).and_then(|r| r.split(['(', '<']).next()) else { continue };
        let mut depth = 0i32;
        let mut end = head;
        for (k, line) in lines.iter().enumerate().skip(head) {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            end = k;
            if depth <= 0 && line.contains('}') {
                break;
            }
        }
        if lines[head..=end].iter().any(|line| symbols.iter().any(|s| mentions(line, s))) {
            found.push(name.trim().to_string());
        }
        i = end + 1;
    }
    found
}

/// The package of the nearest Cargo.toml above a Rust file that names one.
fn cargo_package(root: &Path, file: &str) -> Option<String> {
    if !file.ends_with(".rs") {
        return None;
    }
    let mut dir = Path::new(file).parent();
    while let Some(d) = dir {
        if let Ok(text) = std::fs::read_to_string(root.join(d).join("Cargo.toml")) {
            if let Some(name) = package_name(&text) {
                return Some(name);
            }
        }
        dir = d.parent();
    }
    None
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("name").map(str::trim).and_then(|r| r.strip_prefix('=')) {
                return Some(value.trim().trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The selected tests on the tree before any candidate: what already failed, and how long
/// they took.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub failed_tests: Vec<String>,
    pub passed: Option<u64>,
    /// Where earlier steps' patches are part of the tree and some tests fail on it: how
    /// many passed on the workspace alone (an earlier step may break what the last mends).
    pub passed_untouched: Option<u64>,
    pub seconds: f64,
    pub timed_out: bool,
    /// The run stopped before any test ran (a runner's module missing, a broken conftest, a
    /// build that fails): its output's last line.
    pub not_run: Option<String>,
}

impl Baseline {
    /// A candidate's time limit: three times the baseline and half a minute, within `max`.
    pub fn timeout_secs(&self, max: u64) -> u64 {
        ((self.seconds * 3.0) as u64 + 30).clamp(30, max.max(30))
    }

    /// The failures already there that none of `runs` (the failing tests of each) fixed:
    /// those count against no run. A failure some candidate fixes is evidence, not noise.
    pub fn stubborn<'a>(&self, mut runs: impl Iterator<Item = &'a [String]>) -> Vec<String> {
        let first = runs.next();
        let mut left: Vec<String> = match first {
            Some(run) => self.failed_tests.iter().filter(|t| run.contains(t)).cloned().collect(),
            None => return Vec::new(),
        };
        for run in runs {
            left.retain(|t| run.contains(t));
        }
        left
    }
}

/// Whether `task` names the test `id` (`path::Class::name[case]`): its name, or its
/// file's, as a word.
pub fn named_by(task: &str, id: &str) -> bool {
    let without_case = id.split('[').next().unwrap_or(id);
    let name = without_case.rsplit("::").next().unwrap_or(without_case);
    let file = without_case.split("::").next().unwrap_or_default();
    let stem = file.rsplit('/').next().unwrap_or(file).trim_end_matches(".py");
    mentions(task, name) || (stem != name && stem.starts_with("test") && mentions(task, stem))
}

/// Whether a run's failures are all among the `stubborn` ones (and it named them).
pub fn excused(failed_tests: &[String], stubborn: &[String]) -> bool {
    !failed_tests.is_empty() && failed_tests.iter().all(|t| stubborn.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        (dir, files.iter().map(|(p, _)| p.to_string()).collect())
    }

    #[test]
    fn python_tests_that_mention_what_the_task_names_are_selected() {
        let (dir, files) = tree(&[
            ("pyproject.toml", ""),
            ("pkg/__init__.py", "from .core import topk, take\n"),
            ("pkg/core.py", "def topk(k, seq):\n    pass\n\ndef take(n, seq):\n    pass\n"),
            ("tests/test_topk.py", "from pkg import topk\n"),
            ("tests/test_take.py", "from pkg import take\n"),
            ("tests/test_topkness.py", "topkness = 1\n"),
        ]);
        let chosen = select(dir.path(), &["pkg/core.py".into()], "topk(2, x) is wrong", &files).unwrap();
        assert_eq!(chosen.command, TestCommand::Pytest);
        assert_eq!(chosen.paths, ["tests/test_topk.py"]);
        // Naming nothing in the file, the module's name decides.
        let chosen = select(dir.path(), &["pkg/core.py".into()], "Make it faster", &files).unwrap();
        assert!(chosen.paths.is_empty(), "no test mentions `core`: {:?}", chosen.paths);
    }

    #[test]
    fn of_the_selected_files_only_the_tests_that_mention_the_named_function_run() {
        let more = "from pkg import topk, take\n\n\nclass TopkTests(TestCase):\n    def test_two(self):\n        \
                    sql = \"\"\"\nselect take\n\"\"\"\n        assert topk(2, [1]) == [1]\n\n\nclass TakeTests(TestCase):\n    \
                    def test_one(self):\n        assert take(1, [1]) == [1]\n\n\nclass Helper(object):\n    \
                    def topk(self):\n        pass\n\n\n@mark.slow\ndef test_topk_empty():\n    \
                    assert topk(0, []) == []\n\n\ndef test_take():\n    assert take(0, []) == []\n";
        let (dir, files) = tree(&[
            ("pyproject.toml", ""),
            ("pkg/__init__.py", "from .core import topk, take\n"),
            ("pkg/core.py", "def topk(k, seq):\n    return list(seq)[:k]\n\ndef take(n, seq):\n    pass\n"),
            ("tests/test_more.py", more),
            ("tests/test_topk.py", "from pkg import topk\n\n\ndef test_it():\n    assert topk(1, [2]) == [2]\n"),
            ("tests/test_listed.py", "def test_list():\n    assert list(range(1)) == [0]\n"),
        ]);
        let chosen = select(dir.path(), &["pkg/core.py".into()], "list(topk(2, range(3))) is wrong", &files).unwrap();
        assert_eq!(
            chosen.paths,
            ["tests/test_more.py::TopkTests", "tests/test_more.py::test_topk_empty", "tests/test_topk.py"],
            "the string in TopkTests does not end it; Helper is not collected; a file all of whose tests mention it runs \
             whole; the builtins the example calls pick nothing"
        );
        assert_eq!(chosen.describe(), "pytest on 3 test(s) and file(s)");
        // The module's name picks files by their imports, which no test mentions: whole.
        let chosen = select(dir.path(), &["pkg/core.py".into()], "Make it faster", &files).unwrap();
        assert!(chosen.paths.is_empty(), "{:?}", chosen.paths);
    }

    #[test]
    fn the_runner_follows_the_language_and_cargo_the_package() {
        let (dir, files) = tree(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"crates/a\"]\n"),
            ("crates/a/Cargo.toml", "[package]\nname = \"alpha\"\nversion = \"0.1.0\"\n"),
            ("crates/a/src/lib.rs", "pub fn f() {}\n"),
            ("tests/test_x.py", "import x\n"),
        ]);
        let rust = select(dir.path(), &["crates/a/src/lib.rs".into()], "fix f", &files).unwrap();
        assert_eq!((rust.command, rust.package.as_deref()), (TestCommand::Cargo, Some("alpha")));
        assert!(rust.names.is_empty(), "no test mentions f: the package runs whole");
        let python = select(dir.path(), &["x.py".into()], "fix x", &files).unwrap();
        assert_eq!(python.command, TestCommand::Pytest);
        // A Go file in a workspace without go tests: no runner of another language stands in.
        assert_eq!(select(dir.path(), &["main.go".into()], "fix main", &files), None);
    }

    #[test]
    fn cargo_runs_the_packages_tests_that_mention_what_the_task_names() {
        let lib = "pub fn double(x: i32) -> i32 {\n    x * 2\n}\n\npub fn half(x: i32) -> i32 {\n    x / 2\n}\n\n\
                   #[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn doubles_two() {\n        \
                   let s = format!(\"{}\", 1);\n        assert_eq!(double(2), 4, \"{s}\");\n    }\n\n    #[test]\n    \
                   #[should_panic]\n    fn halves() {\n        assert_eq!(half(2), 2);\n    }\n}\n";
        let more = "#[tokio::test(flavor = \"current_thread\")]\nasync fn double_of_zero() {\n    \
                    assert_eq!(calc::double(0), 0);\n}\n\n#[test_case(1)]\nfn not_libtest_double() {}\n";
        let (dir, files) = tree(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"calc\", \"other\"]\n"),
            ("calc/Cargo.toml", "[package]\nname = \"calc\"\nversion = \"0.1.0\"\n"),
            ("calc/src/lib.rs", lib),
            ("calc/tests/more.rs", more),
            ("other/Cargo.toml", "[package]\nname = \"other\"\nversion = \"0.1.0\"\n"),
            ("other/src/lib.rs", "#[test]\nfn doubles_too() {\n    assert_eq!(calc::double(1), 2);\n}\n"),
        ]);
        let chosen = select(dir.path(), &["calc/src/lib.rs".into()], "double(2) returns 5", &files).unwrap();
        assert_eq!(chosen.package.as_deref(), Some("calc"));
        assert_eq!(
            chosen.names,
            ["double_of_zero", "doubles_two"],
            "halves does not call double; another package's test is not this package's; #[test_case] is not #[test]"
        );
        assert_eq!(chosen.describe(), "cargo test -p calc on 2 test name(s)");
        // Naming nothing in the file, the package runs whole.
        let chosen = select(dir.path(), &["calc/src/lib.rs".into()], "make it faster", &files).unwrap();
        assert!(chosen.names.is_empty(), "{:?}", chosen.names);
    }

    #[test]
    fn only_failures_the_baseline_had_that_no_run_fixed_are_excused() {
        let base = Baseline {
            failed_tests: vec!["t.py::bug".into(), "t.py::flaky_env".into()],
            passed: Some(9),
            passed_untouched: None,
            seconds: 4.0,
            timed_out: false,
            not_run: None,
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let (fixes, misses, breaks) = (
            names(&["t.py::flaky_env"]),
            names(&["t.py::bug", "t.py::flaky_env"]),
            names(&["t.py::flaky_env", "t.py::new"]),
        );
        let stubborn = base.stubborn([&fixes[..], &misses[..], &breaks[..]].into_iter());
        assert_eq!(stubborn, ["t.py::flaky_env"]);
        assert!(excused(&fixes, &stubborn));
        assert!(!excused(&misses, &stubborn), "the bug one candidate fixed counts against the others");
        assert!(!excused(&breaks, &stubborn));
        assert!(!excused(&[], &stubborn), "a run that names no failure is not excused");
        assert!(named_by("Fix add() so that test_add passes", "test_calc.py::test_add"));
        assert!(named_by("test_calc fails", "tests/test_calc.py::T::test_x[1]"));
        assert!(!named_by("Fix add()", "test_calc.py::test_add"));
        assert_eq!(base.timeout_secs(300), 42);
        assert_eq!(Baseline { seconds: 500.0, ..base }.timeout_secs(300), 300);
    }
}
