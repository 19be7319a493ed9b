//! Shared test helpers.

use std::path::PathBuf;

use quorum::config::{Config, ConfigFile, Overrides};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fastest real model, used for every role in these tests.
pub fn smollm() -> PathBuf {
    let path = repo_root().join("models/smollm2-135m-instruct-q4_1.gguf");
    assert!(path.exists(), "{} is missing: run scripts/fetch-small-models.sh", path.display());
    path
}

/// A config with every role on SmolLM2 (the same file: loaded once).
pub fn smollm_config() -> Config {
    let overrides = Overrides { models: vec![format!("all={}", smollm().display())], ..Default::default() };
    Config::resolve(ConfigFile::default(), overrides).expect("valid config")
}

pub fn quorum_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quorum"))
}

/// The tools over this repository (for tests that need a registry but not a fixture).
pub fn repo_tools() -> quorum::tools::Tools {
    quorum::tools::Tools::new(quorum::tools::Workspace::new(&repo_root()).unwrap())
}

/// A task store in a fresh redb file; keep the directory alive as long as the store.
pub async fn temp_tasks() -> (quorum::state::TaskStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = quorum::state::EmbeddedStore::open(dir.path().join("state.redb")).await.unwrap();
    (quorum::state::TaskStore::new(std::sync::Arc::new(store)), dir)
}

/// A real `redis-server` on a free port, stopped on drop. Installed by `scripts/setup.sh --test`.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        RedisServer::start_on(port)
    }

    pub fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is missing: run scripts/setup.sh --test (installs the Debian package redis-server)");
        // Generous: a loaded machine can take seconds to start a process.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        RedisServer { child, url: format!("redis://127.0.0.1:{port}/0"), _dir: dir }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `quorum ARGS...` (a `serve --port 0` command line) and returns the process and
/// the URL it printed.
pub fn spawn_server(args: &[std::ffi::OsString]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(quorum_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split("listening on").nth(1).expect("the address line").trim().to_string();
    (child, url)
}
