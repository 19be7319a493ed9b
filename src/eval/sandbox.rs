//! Runs a candidate against a task's hidden test in a throwaway Python process: its own
//! temporary directory, an isolated interpreter (`-I`), an empty environment, CPU, memory
//! and file-size limits, a wall-clock timeout that kills its whole process group, and no
//! network where user namespaces allow it (`unshare -rn`).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub passed: bool,
    pub timed_out: bool,
    /// The end of stderr when it failed (the assertion or the exception).
    pub error: String,
}

/// Whether `unshare -rn` works here (unprivileged user namespaces may be off).
pub fn network_isolated() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        Command::new("unshare")
            .args(["-rn", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs `program` followed by `test` and `check(entry_point)`; passes when it exits 0.
pub fn check(program: &str, test: &str, entry_point: &str, timeout: Duration) -> std::io::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let source = format!("{program}\n\n{test}\n\ncheck({entry_point})\n");
    std::fs::write(dir.path().join("candidate.py"), source)?;
    let mut cmd = if network_isolated() {
        let mut c = Command::new("unshare");
        c.args(["-rn", "python3"]);
        c
    } else {
        Command::new("python3")
    };
    cmd.args(["-I", "candidate.py"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let cpu = timeout.as_secs() + 1;
    // SAFETY: only async-signal-safe setrlimit calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = |resource, value: u64| {
                let r = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
                libc::setrlimit(resource, &r);
            };
            limit(libc::RLIMIT_CPU, cpu);
            limit(libc::RLIMIT_AS, 1 << 30);
            limit(libc::RLIMIT_FSIZE, 16 << 20);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Read stderr as it comes, so a chatty candidate cannot block on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if started.elapsed() >= timeout {
            // SAFETY: kill(2) on the group the child leads.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = reader.join().unwrap_or_default();
    let tail: String =
        stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let passed = status.is_some_and(|s| s.success());
    let error = if passed {
        String::new()
    } else if timed_out {
        format!("timed out after {} s", timeout.as_secs())
    } else {
        tail
    };
    Ok(Outcome { passed, timed_out, error })
}
