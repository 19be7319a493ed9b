//! `git_diff`: the real git ([`crate::git`]), external diff drivers and textconv filters
//! off, and revisions checked so they cannot pass options.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Workspace};
use crate::git::GitError;

pub const DESCRIPTION: &str = "Show a git diff of the workspace: unstaged changes (mode \"working\", the default), \
staged changes (\"staged\"), everything since HEAD (\"head\"), or between revisions (from, and optionally to). \
Optionally for one path. Returns the unified diff, per-file line counts, and untracked files in working mode.";

const DEFAULT_MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Working,
    Staged,
    Head,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// working (unstaged, default), staged, or head (staged and unstaged).
    #[serde(default)]
    pub mode: Mode,
    /// A revision to diff from (a commit, branch or tag); overrides mode.
    pub from: Option<String>,
    /// With `from`: the revision to diff to (default: the working tree).
    pub to: Option<String>,
    /// Only this file or directory, relative to the workspace root.
    pub path: Option<String>,
    /// Most bytes of diff text to return (default 262144).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct FileStat {
    pub path: String,
    /// Lines added and removed (absent for binary files).
    pub added: Option<u64>,
    pub removed: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub diff: String,
    pub files: Vec<FileStat>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
    pub truncated: bool,
}

/// Runs git in `dir` and returns its stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, ToolError> {
    crate::git::run(dir, args, None).map_err(|e| match e {
        GitError::NotInstalled | GitError::NotARepository => ToolError::Unavailable(e.to_string()),
        GitError::UnknownRevision(_) => ToolError::NotFound(e.to_string()),
        GitError::Refused(_) => ToolError::invalid(e.to_string()),
        GitError::Failed { .. } | GitError::Io(_) => ToolError::Io(e.to_string()),
    })
}

/// A revision or range (`main`, `HEAD~2`, `v1.0..HEAD`): no option, no `REV:PATH` blob
/// syntax (which reads files by path, outside the workspace too), no path (`../x`: git
/// diffs a path outside the repository as two files, so a 200 or a 500 told whether a
/// file outside equals one inside), bounded in length.
fn check_revision(rev: &str) -> Result<&str, ToolError> {
    // A ref name has no component that starts with a dot, and no `//` (git check-ref-format).
    let path_like = |side: &str| side.starts_with(['.', '/']) || side.contains("/.") || side.contains("//");
    let bad = rev.is_empty()
        || rev.len() > 256
        || rev.starts_with('-')
        || rev.contains(':')
        || rev.chars().any(|c| c.is_whitespace() || c.is_control())
        || rev.replace("...", "..").split("..").any(path_like);
    if bad {
        return Err(ToolError::invalid(format!("`{rev}` is not a revision (a commit, branch, tag or A..B range)")));
    }
    Ok(rev)
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    // --relative: a workspace below the repository's top sees only (and paths relative to) itself.
    let mut diff_args: Vec<&str> = vec!["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--relative"];
    match (&args.from, &args.to) {
        (None, Some(_)) => return Err(ToolError::invalid("`to` needs `from`")),
        (Some(from), to) => {
            diff_args.push("--end-of-options");
            diff_args.push(check_revision(from)?);
            if let Some(to) = to {
                diff_args.push(check_revision(to)?);
            }
        }
        (None, None) => match args.mode {
            Mode::Working => {}
            Mode::Staged => diff_args.push("--cached"),
            Mode::Head => diff_args.extend(["--end-of-options", "HEAD"]),
        },
    }
    let pathspec = args.path.as_deref().map(|p| ws.pathspec(p)).transpose()?;
    let mut tail = vec!["--"];
    if let Some(p) = &pathspec {
        tail.push(p);
    }
    let root = ws.root();
    let diff = git(root, &[diff_args.as_slice(), &tail].concat())?;
    let mut numstat_args = diff_args.clone();
    numstat_args.insert(1, "--numstat");
    let files = git(root, &[numstat_args.as_slice(), &tail].concat())?
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let (added, removed, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(FileStat { path: path.to_string(), added: added.parse().ok(), removed: removed.parse().ok() })
        })
        .collect();
    let untracked = if args.from.is_none() && matches!(args.mode, Mode::Working) {
        let ls = [&["ls-files", "--others", "--exclude-standard", "--"][..], &tail[1..]].concat();
        git(root, &ls)?.lines().map(str::to_string).collect()
    } else {
        Vec::new()
    };
    let max = args.max_bytes.unwrap_or(DEFAULT_MAX_BYTES).max(1);
    let truncated = diff.len() > max;
    let mut diff = diff;
    if truncated {
        let mut cut = max;
        while !diff.is_char_boundary(cut) {
            cut -= 1;
        }
        diff.truncate(cut);
    }
    Ok(Output { diff, files, untracked, truncated })
}
