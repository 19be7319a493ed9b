//! pytest started once per interpreter and forked for each run (`forkserver.py`): a run
//! skips the interpreter's start and the installed plugins' imports, which an ML
//! environment's plugins make a second or more. The child is its own process group, in
//! its tree, with the run's environment and module path, writing to a file that quorum
//! reads as it would a pipe. Anything that keeps a server from answering makes the run a
//! cold start instead (the caller's fallback), never a failed run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const SCRIPT: &str = include_str!("forkserver.py");
/// Set to `0` to start every pytest run cold.
pub const SWITCH: &str = "QUORUM_PYTEST_FORK";
/// Long enough for heavy plugins' imports; a server not ready by then is given up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A server is replaced after this, so that plugins installed or upgraded meanwhile are
/// the ones its runs import.
const MAX_AGE: Duration = Duration::from_secs(600);
/// After a server failed to start, runs of that interpreter start cold for this long.
const RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("pytest's interpreter cannot be told from `{0}`")]
    NoInterpreter(String),
    #[error("the environment or the tree's path is not UTF-8")]
    Environment,
    #[error("the fork server for {0} failed to start lately")]
    Failed(String),
    #[error("fork server: {0}")]
    Server(String),
}

/// How pytest is started: the interpreter, the program name the run sees, and the
/// module path's first entry (the script's directory, or the tree for `python -m`).
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub interpreter: PathBuf,
    pub argv0: String,
    pub script_dir: Option<PathBuf>,
}

impl Program {
    /// From a run's argv as [`super::argv`] writes it: `pytest ...` (its shebang names
    /// the interpreter) or `python3 -m pytest ...`.
    pub fn of(argv: &[String]) -> Result<(Program, Vec<String>), ForkError> {
        let unknown = || ForkError::NoInterpreter(argv.join(" "));
        match argv {
            [pytest, rest @ ..] if pytest == "pytest" => {
                let script = which(pytest).ok_or_else(unknown)?;
                let interpreter = shebang(&script).ok_or_else(unknown)?;
                let script_dir = script.parent().map(Path::to_path_buf);
                let program = Program { interpreter, argv0: script.display().to_string(), script_dir };
                Ok((program, rest.to_vec()))
            }
            [python, m, module, rest @ ..] if m == "-m" && module == "pytest" => {
                let interpreter = which(python).ok_or_else(unknown)?;
                Ok((Program { interpreter, argv0: "pytest".into(), script_dir: None }, rest.to_vec()))
            }
            _ => Err(unknown()),
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// The interpreter a script's `#!` line names: an absolute path, or `/usr/bin/env NAME`.
fn shebang(script: &Path) -> Option<PathBuf> {
    let mut line = Vec::new();
    // The first line, at most 512 bytes: a binary has no such line.
    BufReader::new(File::open(script).ok()?).take(512).read_until(b'\n', &mut line).ok()?;
    let words: Vec<&str> = std::str::from_utf8(&line).ok()?.strip_prefix("#!")?.split_whitespace().collect();
    match words.as_slice() {
        [env, name] if env.ends_with("/env") => which(name),
        [interpreter] if Path::new(interpreter).is_absolute() => Some(PathBuf::from(interpreter)),
        _ => None,
    }
}

/// A run started by a fork server: its process group, its output file and its end.
pub struct Run {
    pub pid: i32,
    pub output: PathBuf,
    ended: Receiver<Answer>,
    /// A server replaced meanwhile (grown old) lives until its runs have ended.
    _server: Arc<Server>,
}

impl Run {
    /// The run's exit code (the negated signal number if a signal ended it), once it ended.
    pub fn exit(&self) -> Result<Option<i32>, ForkError> {
        match self.ended.try_recv() {
            Ok(Answer::Exit(code)) => Ok(Some(code)),
            Ok(_) => Err(ForkError::Server("an answer out of turn".into())),
            Err(mpsc::TryRecvError::Empty) => Ok(None),
            Err(mpsc::TryRecvError::Disconnected) => Err(ForkError::Server("the server ended".into())),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.output);
    }
}

/// Starts `args` (pytest's arguments) in `dir` with `env` (the whole environment) on the
/// interpreter's server, starting the server first if it has none.
pub fn spawn(program: &Program, args: &[String], dir: &Path, env: &[(OsString, OsString)]) -> Result<Run, ForkError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
        .collect::<Option<_>>()
        .ok_or(ForkError::Environment)?;
    let text = |path: &Path| path.to_str().map(str::to_string).ok_or(ForkError::Environment);
    let path0 = text(program.script_dir.as_deref().unwrap_or(dir))?;
    let cwd = text(dir)?;
    let server = server(&program.interpreter)?;
    let output = output_file()?;
    let request = Request {
        id: server.next.fetch_add(1, Ordering::Relaxed),
        argv: std::iter::once(program.argv0.clone()).chain(args.iter().cloned()).collect(),
        cwd,
        env,
        path0,
        out: output.display().to_string(),
    };
    let (tx, rx) = mpsc::channel();
    server.waiting.lock().expect("waiting lock").insert(request.id, tx);
    let started = server.send(&request).and_then(|()| match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Answer::Pid(pid)) => Ok(pid),
        Ok(Answer::Error(e)) => Err(ForkError::Server(e)),
        Ok(Answer::Exit(_)) | Err(RecvTimeoutError::Disconnected) => Err(ForkError::Server("no child".into())),
        Err(RecvTimeoutError::Timeout) => Err(ForkError::Server("no answer".into())),
    });
    match started {
        Ok(pid) => Ok(Run { pid, output, ended: rx, _server: server }),
        Err(e) => {
            server.waiting.lock().expect("waiting lock").remove(&request.id);
            let _ = std::fs::remove_file(&output);
            Err(e)
        }
    }
}

/// An empty file, only quorum's to read, for a run's output.
fn output_file() -> Result<PathBuf, ForkError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "quorum-pytest-{}-{}.out",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(options.write(true).create_new(true), 0o600);
    options.open(&path).map_err(|e| ForkError::Server(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[derive(Serialize)]
struct Request {
    id: u64,
    argv: Vec<String>,
    cwd: String,
    env: HashMap<String, String>,
    path0: String,
    out: String,
}

#[derive(Deserialize)]
struct Message {
    id: Option<u64>,
    pid: Option<i32>,
    exit: Option<i32>,
    error: Option<String>,
    ready: Option<bool>,
    python: Option<String>,
    why: Option<String>,
}

enum Answer {
    Pid(i32),
    Exit(i32),
    Error(String),
}

enum Slot {
    Running(Arc<Server>),
    Failed(Instant),
}

static SERVERS: Mutex<Option<HashMap<PathBuf, Slot>>> = Mutex::new(None);

/// The interpreter's server: the running one, or a new one if it has none, its own
/// ended or grew old. Held under the lock while it starts, so that runs asked for at
/// once wait for one server instead of each starting cold.
fn server(interpreter: &Path) -> Result<Arc<Server>, ForkError> {
    let mut servers = SERVERS.lock().expect("fork servers lock");
    let servers = servers.get_or_insert_with(HashMap::new);
    match servers.get(interpreter) {
        Some(Slot::Running(s)) if s.alive.load(Ordering::Relaxed) && s.started.elapsed() < MAX_AGE => {
            return Ok(s.clone())
        }
        Some(Slot::Failed(at)) if at.elapsed() < RETRY_AFTER => {
            return Err(ForkError::Failed(interpreter.display().to_string()))
        }
        _ => {}
    }
    match Server::start(interpreter) {
        Ok(server) => {
            let server = Arc::new(server);
            servers.insert(interpreter.to_path_buf(), Slot::Running(server.clone()));
            Ok(server)
        }
        Err(e) => {
            tracing::warn!(interpreter = %interpreter.display(), error = %e, "pytest runs start cold");
            servers.insert(interpreter.to_path_buf(), Slot::Failed(Instant::now()));
            Err(e)
        }
    }
}

struct Server {
    child: Mutex<Child>,
    stdin: Mutex<ChildStdin>,
    waiting: Arc<Mutex<HashMap<u64, Sender<Answer>>>>,
    next: AtomicU64,
    started: Instant,
    alive: Arc<AtomicBool>,
}

impl Server {
    fn start(interpreter: &Path) -> Result<Server, ForkError> {
        let started = Instant::now();
        let mut child = Command::new(interpreter)
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| ForkError::Server(format!("{}: {e}", interpreter.display())))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            return Err(ForkError::Server("no pipes".into()));
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::debug!(target: "quorum::pytest", "{line}");
            }
        });
        let waiting: Arc<Mutex<HashMap<u64, Sender<Answer>>>> = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let (waiting, alive) = (waiting.clone(), alive.clone());
            std::thread::spawn(move || dispatch(BufReader::new(stdout), &waiting, &alive, ready_tx));
        }
        let server = Server {
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            waiting,
            next: AtomicU64::new(0),
            started,
            alive,
        };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(Err(why)) => Err(ForkError::Server(why)),
            Ok(Ok(python)) => {
                tracing::info!(interpreter = %interpreter.display(), python, secs = started.elapsed().as_secs_f64(), "pytest fork server ready");
                Ok(server)
            }
            Err(_) => Err(ForkError::Server(format!("{} did not get ready", interpreter.display()))),
        }
    }

    fn send(&self, request: &Request) -> Result<(), ForkError> {
        let mut line = serde_json::to_vec(request).map_err(|e| ForkError::Server(e.to_string()))?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().expect("server stdin lock");
        stdin.write_all(&line).and_then(|()| stdin.flush()).map_err(|e| {
            self.alive.store(false, Ordering::Relaxed);
            ForkError::Server(e.to_string())
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its runs keep their own groups and are waited for by no one once it is gone,
        // so it goes only when no run holds it (the last `Arc`).
        let mut child = self.child.lock().expect("server child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Reads the server's answers and hands each to the run waiting for it; when the server
/// ends, every waiting run's channel closes.
fn dispatch(
    stdout: impl BufRead,
    waiting: &Mutex<HashMap<u64, Sender<Answer>>>,
    alive: &AtomicBool,
    ready: Sender<Result<String, String>>,
) {
    for line in stdout.lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            tracing::debug!(target: "quorum::pytest", "{line}");
            continue;
        };
        if let Some(is_ready) = message.ready {
            let _ = ready.send(if is_ready {
                Ok(message.python.unwrap_or_default())
            } else {
                Err(message.why.unwrap_or_default())
            });
            continue;
        }
        let Some(id) = message.id else { continue };
        let mut waiting = waiting.lock().expect("waiting lock");
        let answer = match (message.pid, message.exit, message.error) {
            (Some(pid), _, _) => Answer::Pid(pid),
            (_, Some(code), _) => Answer::Exit(code),
            (_, _, Some(error)) => Answer::Error(error),
            _ => continue,
        };
        let last = !matches!(answer, Answer::Pid(_));
        if let Some(tx) = waiting.get(&id) {
            let _ = tx.send(answer);
        }
        if last {
            waiting.remove(&id);
        }
    }
    alive.store(false, Ordering::Relaxed);
    waiting.lock().expect("waiting lock").clear();
}

/// Whether pytest runs may go through a fork server (`QUORUM_PYTEST_FORK=0` says no).
pub fn enabled() -> bool {
    std::env::var(SWITCH).map_or(true, |v| v != "0")
}

/// The process id of the interpreter's running server.
#[cfg(test)]
pub fn server_pid(interpreter: &Path) -> Option<u32> {
    let servers = SERVERS.lock().expect("fork servers lock");
    match servers.as_ref()?.get(interpreter)? {
        Slot::Running(s) if s.alive.load(Ordering::Relaxed) => Some(s.child.lock().expect("server child lock").id()),
        _ => None,
    }
}
