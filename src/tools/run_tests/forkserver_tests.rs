//! The fork server against a cold start, on a real interpreter with pytest and a plugin
//! that counts its imports.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::forkserver::{self, Program};
use super::{cold, forked, Ended, TestCommand};

/// The interpreter that has pytest (scripts/test.sh puts the test venv first on PATH).
fn python_with_pytest() -> (PathBuf, PathBuf) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, sys, pytest; print(sys.executable); print(os.path.dirname(os.path.dirname(pytest.__file__)))",
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "pytest is missing: scripts/test.sh puts the test venv (with pytest) on PATH");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(PathBuf::from);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// A venv of its own (so its server is this test's alone) that sees pytest's packages and
/// has one more plugin, which appends a line to `imports` each time it is imported and
/// then runs `also`.
fn venv_with_counting_plugin(dir: &Path, imports: &Path, also: &str) -> PathBuf {
    let (python, site) = python_with_pytest();
    let venv = dir.join("venv");
    let made = Command::new(&python).args(["-m", "venv", "--without-pip"]).arg(&venv).status().unwrap();
    assert!(made.success());
    let own_site = std::fs::read_dir(venv.join("lib")).unwrap().next().unwrap().unwrap().path().join("site-packages");
    std::fs::write(own_site.join("pytest_site.pth"), format!("{}\n", site.display())).unwrap();
    std::fs::write(
        own_site.join("countplug.py"),
        format!(
            "open({:?}, 'a').write('imported\\n')\n{also}\n\ndef pytest_report_header(config):\n    return 'countplug loaded'\n",
            imports.display().to_string()
        ),
    )
    .unwrap();
    let dist = own_site.join("countplug-1.0.dist-info");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("METADATA"), "Metadata-Version: 2.1\nName: countplug\nVersion: 1.0\n").unwrap();
    std::fs::write(dist.join("entry_points.txt"), "[pytest11]\ncountplug = countplug\n").unwrap();
    venv.join("bin/python")
}

/// A project whose tests need what a cold start gives: their directory, the run's
/// environment, the tree's `src/` on the module path, a conftest, and assert rewriting.
fn project(dir: &Path) -> PathBuf {
    let root = dir.join("project");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join("src/calc.py"), "def add(a, b):\n    return a + b\n").unwrap();
    std::fs::write(root.join("tests/conftest.py"), "import pytest\n\n@pytest.fixture\ndef two():\n    return 2\n")
        .unwrap();
    std::fs::write(
        root.join("tests/test_calc.py"),
        format!(
            "import os\nfrom calc import add\n\n\
             def test_where(two):\n    assert os.getcwd() == {:?} and os.environ['RUN_MARK'] == 'yes' and two == 2\n\n\
             def test_add():\n    assert add(1, 1) == 2\n\n\
             def test_wrong():\n    assert add(1, 1) == 3\n",
            root.display().to_string()
        ),
    )
    .unwrap();
    root
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

fn tail(ended: &Ended) -> String {
    String::from_utf8_lossy(&ended.capture.tail).into_owned()
}

#[test]
fn forked_runs_report_what_a_cold_start_does_and_import_the_plugins_once() {
    let dir = tempfile::tempdir().unwrap();
    let imports = dir.path().join("imports.txt");
    let python = venv_with_counting_plugin(dir.path(), &imports, "");
    let root = project(dir.path());
    let env: Vec<(OsString, OsString)> =
        vec![("RUN_MARK".into(), "yes".into()), ("PYTHONPATH".into(), super::python_path(&root))];
    let program = Program { interpreter: python.clone(), argv0: "pytest".into(), script_dir: None };
    let args: Vec<String> = ["--color=no", "-rfE"].map(String::from).to_vec();
    let timeout = Duration::from_secs(300);
    let run = || forked(&program, &args, &root, &env, Instant::now(), timeout, 1 << 16).unwrap();

    let first = run();
    let second = run();
    assert_eq!(lines(&imports), 1, "the server imported the plugin and its children did not");
    let argv: Vec<String> =
        [python.display().to_string(), "-m".into(), "pytest".into()].into_iter().chain(args.clone()).collect();
    let cold = cold(TestCommand::Pytest, &argv, &root, &env, Instant::now(), timeout, 1 << 16).unwrap();
    assert_eq!(lines(&imports), 2, "a cold start imports it again");
    for ended in [&first, &second, &cold] {
        let text = tail(ended);
        assert_eq!((ended.capture.counts.passed, ended.capture.counts.failed), (Some(2), Some(1)), "{text}");
        assert_eq!(ended.capture.failed, ["tests/test_calc.py::test_wrong"], "{text}");
        assert_eq!((ended.code, ended.success, ended.timed_out), (Some(1), false, false));
        assert!(text.contains("countplug loaded"), "the plugin's hook ran: {text}");
        assert!(text.contains("assert 2 == 3"), "the test's asserts were rewritten: {text}");
        assert!(!text.contains("already imported"), "{text}");
    }

    // A server that died is replaced by the next run.
    let pid = forkserver::server_pid(&python).expect("the venv's server runs");
    // SAFETY: kill(2) on the server this test started; no memory is involved.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    let after = run();
    assert_eq!(after.capture.counts.passed, Some(2), "{}", tail(&after));
    assert_ne!(forkserver::server_pid(&python), Some(pid));
    assert_eq!(lines(&imports), 3, "the new server imported the plugin once more");
}

#[test]
fn a_run_that_prints_without_end_is_killed_at_the_output_cap_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let imports = dir.path().join("imports.txt");
    let python = venv_with_counting_plugin(dir.path(), &imports, "");
    let root = dir.path().join("loud");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("test_loud.py"), "def test_loud():\n    while True:\n        print('x' * 65536)\n")
        .unwrap();
    let program = Program { interpreter: python, argv0: "pytest".into(), script_dir: None };
    let args = ["-s".to_string()];
    let ended = forked(&program, &args, &root, &[], Instant::now(), Duration::from_secs(600), 4096).unwrap();
    assert!(!ended.success && !ended.timed_out && ended.code.is_none(), "killed by a signal");
    assert!(tail(&ended).contains("MiB of output]"), "{}", tail(&ended));
    assert!(ended.capture.total as u64 >= super::MAX_OUTPUT_FILE, "it read what the file held");
}

#[test]
fn a_plugin_that_starts_a_thread_on_import_gets_cold_starts() {
    let dir = tempfile::tempdir().unwrap();
    let imports = dir.path().join("imports.txt");
    let thread = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()";
    let python = venv_with_counting_plugin(dir.path(), &imports, thread);
    let root = project(dir.path());
    let program = Program { interpreter: python, argv0: "pytest".into(), script_dir: None };
    let refused = forked(&program, &[], &root, &[], Instant::now(), Duration::from_secs(60), 4096);
    let error = refused.err().expect("no run is forked from a server with two threads").to_string();
    assert!(error.contains("2 threads"), "{error}");
}

#[test]
fn a_plugin_whose_threads_stop_for_a_fork_is_forked() {
    let dir = tempfile::tempdir().unwrap();
    let imports = dir.path().join("imports.txt");
    // A pool as OpenBLAS keeps one (numpy loads it with a thread per core): its threads
    // stop before a fork and start again when next needed.
    let pool = "import os, threading\n\
                stop = threading.Event()\n\
                worker = threading.Thread(target=stop.wait, daemon=True)\n\
                worker.start()\n\
                def shut_down():\n    stop.set()\n    worker.join()\n\
                os.register_at_fork(before=shut_down)";
    let python = venv_with_counting_plugin(dir.path(), &imports, pool);
    let root = project(dir.path());
    let env: Vec<(OsString, OsString)> =
        vec![("RUN_MARK".into(), "yes".into()), ("PYTHONPATH".into(), super::python_path(&root))];
    let program = Program { interpreter: python, argv0: "pytest".into(), script_dir: None };
    let ended = forked(&program, &[], &root, &env, Instant::now(), Duration::from_secs(300), 1 << 16).unwrap();
    assert_eq!(ended.capture.counts.passed, Some(2), "{}", tail(&ended));
    assert_eq!(lines(&imports), 1, "the run was forked from the server");
}
