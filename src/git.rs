//! The one way quorum runs git: the real binary with arguments as a vector (no shell),
//! the user's configuration kept out of what quorum reads back (colour, quoting, diff
//! prefixes), no prompts, and paths taken literally (no `:(top)` pathspec magic from a
//! caller). The tools, the pipeline's worktrees and the eval's repositories all call it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed")]
    NotInstalled,
    #[error("the workspace is not a git repository")]
    NotARepository,
    #[error("git: {0}")]
    UnknownRevision(String),
    /// Git refused what the caller gave (an invalid range, a path outside the repository).
    #[error("git: {0}")]
    Refused(String),
    #[error("git {command}: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("git: {0}")]
    Io(String),
}

/// Settings that make git's output the same on every machine.
const SETTINGS: [&str; 8] = [
    "core.quotepath=off",
    "color.ui=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    // Repositories quorum creates or commits in get no hooks, signing or identity of the user's.
    "core.hooksPath=/dev/null",
    "commit.gpgsign=false",
    "user.name=quorum",
    "user.email=quorum@localhost.invalid",
];

/// Git registers a worktree in steps, and `worktree add`, `remove` and `list` read every
/// other worktree's record: one half written by a concurrent add fails them ("failed to
/// read .../commondir"). A round's candidates get their worktrees at the same time, so
/// quorum's worktree commands take turns.
static WORKTREE_COMMANDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `git -C dir args`, with `input` on its stdin, and returns its stdout.
pub fn run(dir: &Path, args: &[&str], input: Option<&str>) -> Result<String, GitError> {
    run_with_index(dir, None, args, input)
}

/// The same with `index` as git's index file instead of the repository's own, so that
/// staging leaves the user's index as it was.
pub fn run_with_index(
    dir: &Path,
    index: Option<&Path>,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    cmd.arg("-C").arg(dir);
    for setting in SETTINGS {
        cmd.args(["-c", setting]);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let _turn = (args.first() == Some(&"worktree"))
        .then(|| WORKTREE_COMMANDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => GitError::NotInstalled,
        _ => GitError::Io(e.to_string()),
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| GitError::Io(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| GitError::Io(e.to_string()))?;
    if !out.status.success() {
        return Err(classify(args, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn classify(args: &[&str], stderr: &str) -> GitError {
    if stderr.to_lowercase().contains("not a git repository") {
        return GitError::NotARepository;
    }
    if ["unknown revision", "bad revision", "ambiguous argument"].iter().any(|s| stderr.contains(s)) {
        return GitError::UnknownRevision(stderr.to_string());
    }
    if ["outside repository", "Invalid", "invalid"].iter().any(|s| stderr.contains(s)) {
        return GitError::Refused(stderr.to_string());
    }
    GitError::Failed { command: args.join(" "), stderr: stderr.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_went_wrong() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(run(dir.path(), &["status"], None), Err(GitError::NotARepository)));
        run(dir.path(), &["init", "-q"], None).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        run(dir.path(), &["add", "."], None).unwrap();
        run(dir.path(), &["commit", "-q", "-m", "one"], None).unwrap();
        assert!(matches!(run(dir.path(), &["diff", "nope"], None), Err(GitError::UnknownRevision(_))));
        let patch = "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n";
        run(dir.path(), &["apply", "-"], Some(patch)).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).unwrap(), "b\n");
        let failed = run(dir.path(), &["apply", "-"], Some(patch)).unwrap_err();
        assert!(matches!(&failed, GitError::Failed { command, .. } if command == "apply -"), "{failed:?}");
    }

    #[test]
    fn worktrees_made_and_removed_at_the_same_time_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        run(&repo, &["init", "-q"], None).unwrap();
        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        run(&repo, &["add", "."], None).unwrap();
        run(&repo, &["commit", "-q", "-m", "one"], None).unwrap();
        let failures: Vec<String> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..5)
                .map(|t| {
                    let (repo, base) = (&repo, dir.path());
                    s.spawn(move || {
                        let mut failed = Vec::new();
                        for round in 0..12 {
                            // The same last component for all, as the candidates' trees have.
                            let tree = base.join(format!("{t}-{round}")).join("tree");
                            let tree = tree.to_string_lossy();
                            for args in [
                                &["worktree", "add", "--detach", "-q", &tree, "HEAD"][..],
                                &["worktree", "remove", "--force", &tree],
                            ] {
                                if let Err(e) = run(repo, args, None) {
                                    failed.push(e.to_string());
                                }
                            }
                        }
                        failed
                    })
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        assert!(failures.is_empty(), "{failures:?}");
    }
}
