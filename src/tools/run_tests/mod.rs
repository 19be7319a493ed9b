//! `run_tests`: one of four test runners (never another program), started without a
//! shell in the workspace or one of its git worktrees, in its own process group so that a
//! timeout kills everything it started. pytest is forked from a server of its interpreter
//! (`forkserver`) where it can be, else started cold. Returns the exit status, the
//! pass/fail counts the runner printed, and the tail of its output.

mod forkserver;
#[cfg(test)]
mod forkserver_tests;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::project::{self, TestCommand};
use super::{git, ToolError, Workspace};

pub const DESCRIPTION: &str =
    "Run the workspace's tests with its detected runner or one of: \"cargo test\", \"pytest\", \
\"npm test\", \"go test\"; optionally filtered by test name, in the workspace or one of its git worktrees. \
Returns exit code, passed/failed counts where the runner prints them, whether it timed out, and the output tail.";

const DEFAULT_TIMEOUT: u64 = 600;
const MAX_TIMEOUT: u64 = 3600;
const DEFAULT_OUTPUT: usize = 16 * 1024;
/// A forked run's output goes to a file: past this it is killed, as the disk is not the
/// place for a test stuck printing.
const MAX_OUTPUT_FILE: u64 = 256 << 20;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The runner (default: the one the workspace's files imply).
    pub command: Option<TestCommand>,
    /// Only tests whose name matches (cargo test NAME, pytest -k, go test -run, npm test -- NAME).
    pub filter: Option<String>,
    /// pytest only: the test files or node ids to run (relative paths), instead of all.
    #[serde(default)]
    pub paths: Vec<String>,
    /// cargo only: the package whose tests run (`cargo test -p NAME`).
    pub package: Option<String>,
    /// cargo only: the tests whose names contain one of these run (`cargo test -- A B`).
    #[serde(default)]
    pub names: Vec<String>,
    /// A git worktree of the workspace to run in (a path), instead of the workspace itself.
    pub worktree: Option<String>,
    /// Seconds before the run is killed (default 600, at most 3600).
    pub timeout_secs: Option<u64>,
    /// Bytes of output to return from the end (default 16384).
    pub max_output_bytes: Option<usize>,
    /// pytest only, for quorum's own test files: neither the installed plugins nor the
    /// project's `addopts` (an ML environment's plugins add a second to every start).
    #[serde(skip)]
    #[schemars(skip)]
    pub bare: bool,
}

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq)]
pub struct Counts {
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    pub skipped: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub command: Vec<String>,
    pub directory: String,
    /// None when killed (timeout) or ended by a signal.
    pub exit_code: Option<i32>,
    pub success: bool,
    pub timed_out: bool,
    #[serde(flatten)]
    pub counts: Counts,
    /// The failing tests as the runner names them (pytest node ids, cargo and go test
    /// names), at most 100.
    pub failed_tests: Vec<String>,
    pub duration_ms: u64,
    pub output_tail: String,
    /// The output was longer than the tail.
    pub truncated: bool,
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    let dir = match &args.worktree {
        Some(path) => worktree(ws, path)?,
        None => ws.root().to_path_buf(),
    };
    let command = match args.command {
        Some(c) => c,
        None => *project::test_commands(&dir).first().ok_or_else(|| {
            ToolError::Unavailable("no test command detected (no Cargo.toml, go.mod, package.json test script or Python tests); pass `command`".into())
        })?,
    };
    if let Some(filter) = &args.filter {
        let bad = filter.is_empty() || filter.starts_with('-') || filter.contains('\0') || filter.len() > 200;
        if bad {
            return Err(ToolError::invalid("filter must be a test name pattern, not an option"));
        }
    }
    let mut argv = argv(command, args.filter.as_deref());
    let bare = args.bare && command == TestCommand::Pytest;
    if bare {
        argv.extend(["-o".into(), "addopts=".into()]);
    }
    argv.extend(selection(command, &args.paths, args.package.as_deref())?);
    argv.extend(test_names(command, &args.names, args.filter.is_some())?);
    let timeout = Duration::from_secs(args.timeout_secs.unwrap_or(DEFAULT_TIMEOUT).clamp(1, MAX_TIMEOUT));
    let max_output = args.max_output_bytes.unwrap_or(DEFAULT_OUTPUT).clamp(256, 1024 * 1024);
    // A worktree's build shares the workspace's target directory: its dependencies are
    // built already, and a second candidate's build is incremental.
    let shared_target =
        (command == TestCommand::Cargo && args.worktree.is_some() && std::env::var_os("CARGO_TARGET_DIR").is_none())
            .then(|| ws.root().join("target"));
    execute(command, argv, &dir, shared_target, bare, timeout, max_output).map(|mut out| {
        out.directory = if args.worktree.is_some() { dir.display().to_string() } else { ".".into() };
        out
    })
}

/// The arguments that limit a run to some tests: files or node ids for pytest, a package
/// for cargo; neither can be an option or leave the tree.
fn selection(command: TestCommand, paths: &[String], package: Option<&str>) -> Result<Vec<String>, ToolError> {
    let mut args = Vec::new();
    if !paths.is_empty() {
        if command != TestCommand::Pytest {
            return Err(ToolError::invalid("paths select pytest tests; other runners take a filter"));
        }
        if paths.len() > 500 {
            return Err(ToolError::invalid("at most 500 paths"));
        }
        for path in paths {
            let file = path.split("::").next().unwrap_or_default();
            let escapes = Path::new(file).components().any(|c| !matches!(c, std::path::Component::Normal(_)));
            if file.is_empty() || path.starts_with('-') || path.contains('\0') || escapes {
                return Err(ToolError::invalid(format!("`{path}` is not a relative test path")));
            }
            args.push(path.clone());
        }
    }
    if let Some(package) = package {
        if command != TestCommand::Cargo {
            return Err(ToolError::invalid("package selects a cargo package; other runners take paths or a filter"));
        }
        let valid = !package.is_empty()
            && package.len() <= 64
            && package.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ToolError::invalid(format!("`{package}` is not a cargo package name")));
        }
        args.extend(["-p".to_string(), package.to_string()]);
    }
    Ok(args)
}

/// libtest's filters after `--`: test names (a path's words joined by `::`), never options.
fn test_names(command: TestCommand, names: &[String], filtered: bool) -> Result<Vec<String>, ToolError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if command != TestCommand::Cargo || filtered {
        return Err(ToolError::invalid("names select cargo tests, without a filter beside them"));
    }
    if names.len() > 500 {
        return Err(ToolError::invalid("at most 500 names"));
    }
    let valid = |n: &String| {
        !n.is_empty()
            && n.len() <= 200
            && n.split("::").all(|w| !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    if let Some(bad) = names.iter().find(|n| !valid(n)) {
        return Err(ToolError::invalid(format!("`{bad}` is not a test name")));
    }
    Ok(std::iter::once("--".to_string()).chain(names.iter().cloned()).collect())
}

/// The program and arguments for a runner: fixed, plus a filter that cannot be an option.
fn argv(command: TestCommand, filter: Option<&str>) -> Vec<String> {
    let mut argv: Vec<String> = match command {
        TestCommand::Cargo => vec!["cargo".into(), "test".into(), "--color".into(), "never".into()],
        // -rfE names the failing tests in the summary at the end, where the tail keeps it.
        TestCommand::Pytest if on_path("pytest") => vec!["pytest".into(), "--color=no".into(), "-rfE".into()],
        TestCommand::Pytest => {
            vec!["python3".into(), "-m".into(), "pytest".into(), "--color=no".into(), "-rfE".into()]
        }
        TestCommand::Npm => vec!["npm".into(), "test".into()],
        TestCommand::Go => vec!["go".into(), "test".into(), "-v".into(), "./...".into()],
    };
    if let Some(filter) = filter {
        match command {
            TestCommand::Cargo => argv.push(filter.into()),
            TestCommand::Pytest => argv.extend(["-k".into(), filter.into()]),
            TestCommand::Npm => argv.extend(["--".into(), filter.into()]),
            TestCommand::Go => argv.extend(["-run".into(), filter.into()]),
        }
    }
    argv
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The tests import the code of the tree they run in, not an installed copy of it (a
/// scratch worktree's candidate, not the user's editable install): the tree's root and its
/// `src/` come first on the module path.
fn python_path(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if dir.join("src").is_dir() {
        paths.push(dir.join("src"));
    }
    paths.extend(
        std::env::var_os("PYTHONPATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default(),
    );
    std::env::join_paths(paths).unwrap_or_default()
}

/// The worktree must be the workspace or one `git worktree list` names.
fn worktree(ws: &Workspace, path: &str) -> Result<PathBuf, ToolError> {
    if path.contains('\0') {
        return Err(ToolError::refused("the path contains a NUL byte"));
    }
    let given = Path::new(path);
    let joined = if given.is_absolute() { given.to_path_buf() } else { ws.root().join(given) };
    let canonical =
        joined.canonicalize().map_err(|_| ToolError::NotFound(format!("worktree `{path}` does not exist")))?;
    let listed = git::git(ws.root(), &["worktree", "list", "--porcelain"])?;
    let known = listed
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .filter_map(|p| Path::new(p).canonicalize().ok())
        .any(|p| p == canonical);
    if !known {
        return Err(ToolError::refused(format!("`{path}` is not a git worktree of the workspace (git worktree list)")));
    }
    Ok(canonical)
}

/// The last `max` bytes of the output, with the runner's counts parsed line by line.
struct Capture {
    command: TestCommand,
    tail: Vec<u8>,
    total: usize,
    max: usize,
    counts: Counts,
    failed: Vec<String>,
}

impl Capture {
    fn new(command: TestCommand, max: usize) -> Capture {
        Capture { command, tail: Vec::new(), total: 0, max, counts: Counts::default(), failed: Vec::new() }
    }

    fn push_line(&mut self, line: &[u8]) {
        let command = self.command;
        if self.failed.len() < 100 {
            if let Some(name) = failed_test(command, &String::from_utf8_lossy(line)) {
                self.failed.push(name);
            }
        }
        self.total += line.len();
        self.tail.extend_from_slice(line);
        if self.tail.len() > 2 * self.max {
            let cut = self.tail.len() - self.max;
            self.tail.drain(..cut);
        }
        parse_counts(command, &String::from_utf8_lossy(line), &mut self.counts);
    }
}

/// How a run ended: its exit code (None when a signal ended it), whether it was killed
/// at the timeout, and what it printed.
struct Ended {
    code: Option<i32>,
    success: bool,
    timed_out: bool,
    capture: Capture,
}

fn execute(
    command: TestCommand,
    argv: Vec<String>,
    dir: &Path,
    target_dir: Option<PathBuf>,
    bare: bool,
    timeout: Duration,
    max: usize,
) -> Result<Output, ToolError> {
    let started = Instant::now();
    let mut env: Vec<(OsString, OsString)> =
        vec![("NO_COLOR".into(), "1".into()), ("CARGO_TERM_COLOR".into(), "never".into())];
    if command == TestCommand::Pytest {
        env.push(("PYTHONPATH".into(), python_path(dir)));
    }
    if bare {
        env.push(("PYTEST_DISABLE_PLUGIN_AUTOLOAD".into(), "1".into()));
    }
    if let Some(target) = target_dir {
        env.push(("CARGO_TARGET_DIR".into(), target.into()));
    }
    let forked = (command == TestCommand::Pytest && forkserver::enabled())
        .then(|| {
            forkserver::Program::of(&argv)
                .and_then(|(program, args)| forked(&program, &args, dir, &env, started, timeout, max))
        })
        .and_then(|ended| ended.map_err(|e| tracing::debug!(error = %e, "pytest starts cold")).ok());
    let ended = match forked {
        Some(ended) => ended,
        None => cold(command, &argv, dir, &env, started, timeout, max)?,
    };
    let capture = ended.capture;
    let start = capture.tail.len().saturating_sub(max);
    let mut tail = String::from_utf8_lossy(&capture.tail[start..]).into_owned();
    if ended.timed_out {
        tail.push_str(&format!("\n[quorum: killed after {} s]\n", timeout.as_secs()));
    }
    Ok(Output {
        command: argv,
        directory: String::new(),
        exit_code: ended.code,
        success: ended.success && !ended.timed_out,
        timed_out: ended.timed_out,
        counts: capture.counts,
        failed_tests: capture.failed,
        duration_ms: started.elapsed().as_millis() as u64,
        output_tail: tail,
        truncated: capture.total > max,
    })
}

/// The runner started as a child of quorum, its output read from pipes as it comes.
fn cold(
    command: TestCommand,
    argv: &[String],
    dir: &Path,
    env: &[(OsString, OsString)],
    started: Instant,
    timeout: Duration,
    max: usize,
) -> Result<Ended, ToolError> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ToolError::Unavailable(format!("`{}` is not installed", argv[0])),
            _ => ToolError::Io(format!("{}: {e}", argv[0])),
        })?;
    let capture = Arc::new(Mutex::new(Capture::new(command, max)));
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let capture = capture.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                capture.lock().expect("capture lock").push_line(&line);
                line.clear();
            }
        })
    })
    .collect();
    let pgid = child.id() as i32;
    let (status, timed_out) =
        wait(pgid, started, timeout, || child.try_wait(), || false).map_err(|e| ToolError::Io(e.to_string()))?;
    // A daemon that left the group can keep a pipe open: give the readers a moment, not forever.
    let deadline = Instant::now() + Duration::from_secs(2);
    for reader in readers {
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
    let capture = std::mem::replace(&mut *capture.lock().expect("capture lock"), Capture::new(command, max));
    Ok(Ended { code: status.code(), success: status.success(), timed_out, capture })
}

/// pytest forked from its interpreter's server, its output read from the file it wrote.
fn forked(
    program: &forkserver::Program,
    args: &[String],
    dir: &Path,
    env: &[(OsString, OsString)],
    started: Instant,
    timeout: Duration,
    max: usize,
) -> Result<Ended, forkserver::ForkError> {
    let mut whole: HashMap<OsString, OsString> = std::env::vars_os().collect();
    whole.extend(env.iter().cloned());
    let run = forkserver::spawn(program, args, dir, &whole.into_iter().collect::<Vec<_>>())?;
    let too_long = || std::fs::metadata(&run.output).is_ok_and(|m| m.len() > MAX_OUTPUT_FILE);
    let waited = wait(run.pid, started, timeout, || run.exit(), too_long);
    let (code, timed_out) = waited.inspect_err(|_| {
        // The server is gone and the run's end with it: stop the run before it starts again cold.
        // SAFETY: kill(2) on the run's process group; no memory is involved.
        unsafe { libc::kill(-run.pid, libc::SIGKILL) };
    })?;
    let mut capture = Capture::new(TestCommand::Pytest, max);
    let file = File::open(&run.output).map_err(|e| forkserver::ForkError::Server(e.to_string()))?;
    let mut reader = BufReader::new(file.take(MAX_OUTPUT_FILE));
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
        capture.push_line(&line);
        line.clear();
    }
    if too_long() {
        capture.push_line(format!("\n[quorum: killed after {} MiB of output]\n", MAX_OUTPUT_FILE >> 20).as_bytes());
    }
    Ok(Ended { code: (code >= 0).then_some(code), success: code == 0, timed_out, capture })
}

/// Waits for a run to end (`ended` polls it), killing its process group at the timeout,
/// when the caller has gone or when `overflow` says so, and whatever the run left in
/// its group once it ended. Returns how it ended and whether it was the timeout.
fn wait<T, E>(
    pgid: i32,
    started: Instant,
    timeout: Duration,
    mut ended: impl FnMut() -> Result<Option<T>, E>,
    mut overflow: impl FnMut() -> bool,
) -> Result<(T, bool), E> {
    let mut killed = false;
    let mut timed_out = false;
    let end = loop {
        if let Some(end) = ended()? {
            break end;
        }
        if !killed {
            let stopped = super::cancel::stopped();
            if started.elapsed() >= timeout || stopped || overflow() {
                timed_out = started.elapsed() >= timeout && !stopped;
                killed = true;
                // SAFETY: kill(2) on the process group this run leads; no memory is involved.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(if killed { 5 } else { 25 }));
    };
    // Whatever the runner left behind in its group goes too, so the pipes close.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    Ok((end, timed_out))
}

/// The test a line of the runner's output reports failing: pytest's `FAILED id - why`
/// and `ERROR id`, cargo's `test name ... FAILED`, go's `--- FAIL: Name (0.00s)`.
pub fn failed_test(command: TestCommand, line: &str) -> Option<String> {
    let line = line.trim_end();
    let name = match command {
        TestCommand::Pytest => {
            let rest = line.strip_prefix("FAILED ").or_else(|| line.strip_prefix("ERROR "))?;
            rest.split(" - ").next()?
        }
        TestCommand::Cargo => line.strip_prefix("test ")?.strip_suffix(" ... FAILED")?,
        TestCommand::Go => line.trim_start().strip_prefix("--- FAIL: ")?.split(' ').next()?,
        TestCommand::Npm => return None,
    };
    (!name.is_empty()).then(|| name.to_string())
}

/// Numbers before a word, as in "3 passed, 1 failed": the number preceding `word`.
fn count_before(line: &str, words: &[&str]) -> Option<u64> {
    let tokens: Vec<&str> =
        line.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '=').filter(|t| !t.is_empty()).collect();
    tokens.windows(2).find(|w| words.contains(&w[1])).and_then(|w| w[0].parse().ok())
}

fn add(slot: &mut Option<u64>, n: Option<u64>) {
    if let Some(n) = n {
        *slot = Some(slot.unwrap_or(0) + n);
    }
}

/// Reads the runners' summary lines. cargo prints one `test result:` per test binary
/// (summed); pytest and jest print one summary (the last wins); go prints a line per test.
pub fn parse_counts(command: TestCommand, line: &str, counts: &mut Counts) {
    let line = line.trim();
    match command {
        TestCommand::Cargo if line.starts_with("test result:") => {
            add(&mut counts.passed, count_before(line, &["passed"]));
            add(&mut counts.failed, count_before(line, &["failed"]));
            add(&mut counts.skipped, count_before(line, &["ignored"]));
        }
        TestCommand::Pytest
            if (line.contains(" passed") || line.contains(" failed") || line.contains(" error"))
                && line.contains(" in ") =>
        {
            let failed =
                count_before(line, &["failed"]).unwrap_or(0) + count_before(line, &["error", "errors"]).unwrap_or(0);
            *counts = Counts {
                passed: Some(count_before(line, &["passed"]).unwrap_or(0)),
                failed: Some(failed),
                skipped: count_before(line, &["skipped"]),
            };
        }
        TestCommand::Go if line.starts_with("--- PASS") => add(&mut counts.passed, Some(1)),
        TestCommand::Go if line.starts_with("--- FAIL") => add(&mut counts.failed, Some(1)),
        TestCommand::Go if line.starts_with("--- SKIP") => add(&mut counts.skipped, Some(1)),
        TestCommand::Npm if line.starts_with("Tests:") => {
            *counts = Counts {
                passed: Some(count_before(line, &["passed"]).unwrap_or(0)),
                failed: Some(count_before(line, &["failed"]).unwrap_or(0)),
                skipped: count_before(line, &["skipped"]),
            };
        }
        TestCommand::Npm if line.contains(" passing") || line.starts_with("# pass ") => {
            counts.passed = line.split_whitespace().find_map(|t| t.parse().ok());
        }
        TestCommand::Npm if line.contains(" failing") || line.starts_with("# fail ") => {
            counts.failed = line.split_whitespace().find_map(|t| t.parse().ok());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_tests_are_named_as_each_runner_prints_them() {
        let failed = |c, line| failed_test(c, line);
        assert_eq!(
            failed(TestCommand::Pytest, "FAILED tests/t.py::T::test_x[1] - assert 1 == 2").as_deref(),
            Some("tests/t.py::T::test_x[1]")
        );
        assert_eq!(failed(TestCommand::Pytest, "ERROR tests/t.py").as_deref(), Some("tests/t.py"));
        assert_eq!(failed(TestCommand::Cargo, "test parse::bad_input ... FAILED").as_deref(), Some("parse::bad_input"));
        assert_eq!(failed(TestCommand::Go, "    --- FAIL: TestSplit (0.00s)").as_deref(), Some("TestSplit"));
        assert_eq!(failed(TestCommand::Pytest, "tests/t.py::test_x PASSED"), None);
    }

    #[test]
    fn a_selection_is_test_paths_for_pytest_and_a_package_and_names_for_cargo_never_an_option() {
        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            selection(TestCommand::Pytest, &paths(&["tests/t.py::test_x"]), None).unwrap(),
            ["tests/t.py::test_x"]
        );
        assert_eq!(selection(TestCommand::Cargo, &[], Some("quorum-core")).unwrap(), ["-p", "quorum-core"]);
        for bad in ["--rootdir=/", "../outside.py", "/etc/passwd"] {
            assert!(selection(TestCommand::Pytest, &paths(&[bad]), None).is_err(), "{bad}");
        }
        assert!(selection(TestCommand::Cargo, &paths(&["t.py"]), None).is_err());
        assert!(selection(TestCommand::Cargo, &[], Some("--config=x")).is_err());
        assert!(selection(TestCommand::Pytest, &[], Some("pkg")).is_err());
        let names = paths(&["doubles_two", "tests::halves"]);
        assert_eq!(test_names(TestCommand::Cargo, &names, false).unwrap(), ["--", "doubles_two", "tests::halves"]);
        assert!(test_names(TestCommand::Cargo, &[], true).unwrap().is_empty());
        for bad in ["--exact", "a b", "", "x::"] {
            assert!(test_names(TestCommand::Cargo, &paths(&[bad]), false).is_err(), "{bad}");
        }
        assert!(test_names(TestCommand::Pytest, &names, false).is_err());
        assert!(test_names(TestCommand::Cargo, &names, true).is_err(), "a filter beside names is refused");
    }

    fn parse(command: TestCommand, output: &str) -> Counts {
        let mut counts = Counts::default();
        for line in output.lines() {
            parse_counts(command, line, &mut counts);
        }
        counts
    }

    #[test]
    fn runner_summaries_are_counted() {
        let cargo = "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured\n\
                     test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured";
        assert_eq!(parse(TestCommand::Cargo, cargo), Counts { passed: Some(5), failed: Some(1), skipped: Some(1) });
        let pytest = "tests/test_a.py ..F\n=========== 1 failed, 2 passed, 1 skipped in 0.12s ===========";
        assert_eq!(parse(TestCommand::Pytest, pytest), Counts { passed: Some(2), failed: Some(1), skipped: Some(1) });
        assert_eq!(parse(TestCommand::Pytest, "1 passed, 1 error in 0.3s").failed, Some(1));
        let go = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.00s)\nFAIL";
        assert_eq!(parse(TestCommand::Go, go), Counts { passed: Some(1), failed: Some(1), skipped: None });
        let jest = "Tests:       1 failed, 5 passed, 6 total";
        assert_eq!(parse(TestCommand::Npm, jest), Counts { passed: Some(5), failed: Some(1), skipped: None });
        let mocha = "  4 passing (8ms)\n  2 failing";
        assert_eq!(parse(TestCommand::Npm, mocha).failed, Some(2));
        assert_eq!(parse(TestCommand::Cargo, "running 3 tests"), Counts::default());
    }
}
