//! The coders' edit format: search/replace blocks, which small models get right far more
//! often than unified diffs (no line numbers or hunk counts to compute).
//!
//! ```text
//! FILE: src/calc.py
//! <<<<<<< SEARCH
//! exact lines from the file
//! =======
//! the lines that replace them
//! >>>>>>> REPLACE
//! ```
//! An empty SEARCH part creates a new file. A REPLACE that is a whole function or class
//! rewrites that definition (see [`crate::pipeline::answer::rewrite`]).

use std::path::Path;

use crate::pipeline::excerpt;
use crate::pipeline::models::Ending;
use crate::tools::Workspace;

pub const SEARCH: &str = "<<<<<<< SEARCH";
pub const DIVIDER: &str = "=======";
pub const REPLACE: &str = ">>>>>>> REPLACE";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: String,
    pub search: String,
    pub replace: String,
}

/// Why a candidate cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("does not apply: {0}")]
    DoesNotApply(String),
}

/// The most lines a SEARCH may quote. Small coders otherwise copy a whole function and
/// its docstring into SEARCH before writing it again in REPLACE, and run out of tokens;
/// a longer change is a whole-definition rewrite, whose SEARCH is one line.
pub const SEARCH_LINES: usize = 8;

/// Edit blocks on `paths` (any path when none are given), at most `max_blocks`.
pub struct EditBlocks {
    pub paths: Vec<String>,
    pub max_blocks: u32,
}

impl super::Format for EditBlocks {
    fn instructions(&self) -> &'static str {
        crate::prompts::EDIT_BLOCKS
    }

    fn request(&self) -> &'static str {
        "Write the edit blocks for this step now."
    }

    fn grammar(&self) -> String {
        grammar(&self.paths, self.max_blocks)
    }

    /// A line that starts with a fence or an excerpt's marker cannot be code the block
    /// writes: a small coder that reaches one has finished its definition and goes on to
    /// copy the rest of what it was shown, until its token limit.
    fn stops(&self) -> &'static [&'static str] {
        &["\n```", "\n... ("]
    }

    fn apply(&self, root: &Path, answer: &str, ending: Ending) -> Result<(), super::Refused> {
        let text = match ending {
            Ending::Finished => closed(answer),
            Ending::TokenLimit => before_repetition(answer).ok_or(super::Refused::CutOff)?.into(),
            Ending::Deadline => complete_blocks(answer).ok_or(super::Refused::Unfinished)?.into(),
        };
        Ok(apply(root, &parse(&text)?)?)
    }
}

/// The answer with its last block closed where it stopped inside that block's REPLACE
/// part (at one of [`EditBlocks`]' stop strings: its grammar ends nowhere else).
fn closed(answer: &str) -> std::borrow::Cow<'_, str> {
    let open = answer.rfind(SEARCH).is_some_and(|start| {
        let rest = &answer[start..];
        rest.lines().any(|l| l.trim_end() == DIVIDER) && !rest.lines().any(|l| l.trim_end() == REPLACE)
    });
    if open {
        format!("{}\n{REPLACE}\n", answer.trim_end_matches('\n')).into()
    } else {
        answer.into()
    }
}

/// A GBNF grammar for one to `max_blocks` blocks on the given paths (any path when
/// none are given), so that even a small model's answer is always well-formed and ends.
/// The price: a line inside a block cannot start with two of `<`, `=`, `>` (no marker-free
/// code line in the languages we target does at column 0).
///
/// A SEARCH line cannot start with `...` at column 0 either: that is how an excerpt's
/// marker for lines not shown starts, and a small coder quoting what it was shown copies
/// one into its SEARCH, where the stop string for it would end the answer inside a block
/// that says nothing to replace.
pub fn grammar(paths: &[String], max_blocks: u32) -> String {
    let more = max_blocks.saturating_sub(1);
    [
        format!(r#"root ::= block ("\n"? block){{0,{more}}}"#),
        format!(r#"block ::= "FILE: " path "\n<<<<<<< SEARCH\n" quoted{{0,{SEARCH_LINES}}} "=======\n" line* ">>>>>>> REPLACE\n""#),
        format!("path ::= {}", path_rule(paths)),
        r#"line ::= "\n" | [^<=>\n] [^\n]* "\n" | [<=>] [^<=>\n] [^\n]* "\n""#.to_string(),
        r#"quoted ::= "\n" | [^<=>.\n] [^\n]* "\n" | [<=>] [^<=>\n] [^\n]* "\n" | "." ("." [^.\n] | [^.\n]) [^\n]* "\n" | "." "."? "\n""#.to_string(),
    ]
    .join("\n")
}

/// The grammar's alternatives for a file path: the given paths, or any plausible path
/// when none are given (or none is safe to quote in GBNF).
pub(super) fn path_rule(paths: &[String]) -> String {
    let safe: Vec<String> = paths.iter().filter(|p| quotable(p)).map(|p| format!("\"{p}\"")).collect();
    if safe.is_empty() {
        "[a-zA-Z0-9_./-]+".to_string()
    } else {
        safe.join(" | ")
    }
}

/// Whether a path can be named in a grammar as it is (no quoting or escapes needed).
pub fn quotable(path: &str) -> bool {
    !path.is_empty() && path.chars().all(|c| c.is_alphanumeric() || "_./-".contains(c))
}

/// A path line: `FILE: x`, or a bare relative path (models often drop the prefix).
pub(super) fn path_of(line: &str) -> Option<String> {
    let line = line.trim().trim_matches('`').trim();
    let line = line.strip_prefix("FILE:").or_else(|| line.strip_prefix("File:")).unwrap_or(line).trim();
    let plausible =
        !line.is_empty() && !line.contains(char::is_whitespace) && (line.contains('.') || line.contains('/'));
    plausible.then(|| line.trim_start_matches("./").to_string())
}

/// The edit blocks of a coder's answer; a block repeated word for word counts once.
pub fn parse(text: &str) -> Result<Vec<Edit>, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut edits = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != SEARCH {
            i += 1;
            continue;
        }
        let path = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| !l.is_empty() && !l.starts_with("```"))
            .and_then(path_of)
            .ok_or_else(|| EditError::Malformed(format!("no file path before the SEARCH on line {}", i + 1)))?;
        let divider = (i + 1..lines.len())
            .find(|&j| lines[j].trim_end() == DIVIDER)
            .ok_or_else(|| EditError::Malformed(format!("the block for {path} has no {DIVIDER}")))?;
        let end = (divider + 1..lines.len())
            .find(|&j| lines[j].trim_end() == REPLACE)
            .ok_or_else(|| EditError::Malformed(format!("the block for {path} has no {REPLACE}")))?;
        if lines[i + 1..divider].iter().any(|l| l.trim_end() == SEARCH) {
            return Err(EditError::Malformed(format!("nested SEARCH in the block for {path}")));
        }
        let join = |part: &[&str]| {
            let part = without_markers(part);
            if part.is_empty() {
                String::new()
            } else {
                format!("{}\n", part.join("\n"))
            }
        };
        let edit = Edit { path, search: join(&lines[i + 1..divider]), replace: join(&lines[divider + 1..end]) };
        // Small models often say the same block again; applying it twice would fail.
        if !edits.contains(&edit) {
            edits.push(edit);
        }
        i = end + 1;
    }
    if edits.is_empty() {
        return Err(EditError::Malformed("no SEARCH/REPLACE block".into()));
    }
    Ok(edits)
}

/// `part` without the lines that stood for code not shown ([`excerpt`]), which small
/// models copy from the excerpt they were shown, and without the blank lines before such a
/// line at the end.
fn without_markers<'a>(part: &[&'a str]) -> Vec<&'a str> {
    let ends_cut = part.iter().rev().find(|l| !l.trim().is_empty()).is_some_and(|l| excerpt::is_marker(l));
    let mut kept: Vec<&str> = part.iter().copied().filter(|l| !excerpt::is_marker(l)).collect();
    if ends_cut {
        while kept.last().is_some_and(|l| l.trim().is_empty()) {
            kept.pop();
        }
    }
    kept
}

/// The complete blocks of an answer cut off by its token limit, when what was cut off
/// only repeats text already written: a small model looping over its own edit, not one
/// that ran out of room for it.
pub fn before_repetition(text: &str) -> Option<&str> {
    let end = text.rfind(REPLACE)? + REPLACE.len();
    let (done, tail) = text.split_at(end);
    let tail = tail.trim();
    // Past a block's header, so that it is known to copy one.
    (tail.lines().count() >= 3 && done.contains(tail)).then_some(done)
}

/// The blocks of an answer up to the end of its last complete one (None before any).
fn complete_blocks(text: &str) -> Option<&str> {
    text.rfind(REPLACE).map(|at| &text[..at + REPLACE.len()])
}

/// Applies edits to the tree at `root`; paths cannot leave it. All or nothing per file
/// is not needed: a failed candidate's worktree is discarded.
pub fn apply(root: &Path, edits: &[Edit]) -> Result<(), EditError> {
    let tree = Workspace::new(root).map_err(|e| EditError::DoesNotApply(e.to_string()))?;
    for edit in edits {
        let target = match tree.resolve_content(&edit.path) {
            Ok(path) => path,
            Err(crate::tools::ToolError::NotFound(_)) if edit.search.is_empty() => {
                let spec = tree.pathspec(&edit.path).map_err(|e| EditError::DoesNotApply(e.to_string()))?;
                if spec.split('/').any(|c| c == ".git") {
                    return Err(EditError::DoesNotApply(format!("{} is inside .git", edit.path)));
                }
                create_inside(tree.root(), &root.join(spec), &edit.replace)
                    .map_err(|why| EditError::DoesNotApply(format!("{}: {why}", edit.path)))?;
                continue;
            }
            Err(e) => return Err(EditError::DoesNotApply(format!("{}: {e}", edit.path))),
        };
        let text =
            std::fs::read_to_string(&target).map_err(|e| EditError::DoesNotApply(format!("{}: {e}", edit.path)))?;
        if edit.search.is_empty() {
            return Err(EditError::DoesNotApply(format!(
                "{} exists; an empty SEARCH only creates new files",
                edit.path
            )));
        }
        let plain = replace_once(&text, &edit.search, &edit.replace);
        let updated = match crate::pipeline::answer::rewrite::whole_definition(
            &target,
            &text,
            &edit.search,
            &edit.replace,
            plain.is_ok(),
        ) {
            Some(rewritten) => rewritten,
            None => plain.map_err(|why| EditError::DoesNotApply(format!("{}: {why}", edit.path)))?,
        };
        std::fs::write(&target, updated).map_err(|e| EditError::DoesNotApply(e.to_string()))?;
    }
    Ok(())
}

/// Creates a new file whose directory, after symlinks, is inside `root` and not in its
/// `.git`; a symlink as the file name itself (dangling or not) is refused by `create_new`.
fn create_inside(root: &Path, path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().ok_or("no directory")?;
    // Checked before any directory is made, on the nearest one that exists, and again after.
    let inside = |dir: &Path| -> Result<(), String> {
        let real = dir.canonicalize().map_err(|e| e.to_string())?;
        match real.strip_prefix(root) {
            Ok(rest) if !rest.components().any(|c| c.as_os_str() == ".git") => Ok(()),
            Ok(_) => Err("the path leads into .git".into()),
            Err(_) => Err("the path leaves the tree through a symlink".into()),
        }
    };
    inside(dir.ancestors().find(|d| d.exists()).ok_or("no directory")?)?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    inside(dir)?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())
}

/// Replaces the one place `search` occurs: exactly, else ignoring trailing whitespace on
/// each line (models often drop or add it), else with every line's indentation shifted by
/// one amount (a small coder quoting a method often drops its class's indentation); the
/// REPLACE text is shifted by the same amount.
fn replace_once(text: &str, search: &str, replace: &str) -> Result<String, String> {
    match text.matches(search).count() {
        1 => return Ok(text.replacen(search, replace, 1)),
        n if n > 1 => return Err(format!("the SEARCH text occurs {n} times; include more lines to make it unique")),
        _ => {}
    }
    let lines: Vec<&str> = text.lines().collect();
    let wanted: Vec<&str> = search.lines().map(str::trim_end).collect();
    if wanted.iter().all(|l| l.is_empty()) {
        return Err("the SEARCH text is blank".into());
    }
    let starts = |shifted: bool| -> Vec<(usize, Shift)> {
        (0..lines.len().saturating_sub(wanted.len() - 1))
            .filter_map(|i| {
                let window = &lines[i..i + wanted.len()];
                let same = window.iter().map(|l| l.trim_end()).eq(wanted.iter().copied());
                match (same, shifted) {
                    (true, false) => Some((i, Shift::default())),
                    (_, true) => Shift::between(window, &wanted).map(|shift| (i, shift)),
                    _ => None,
                }
            })
            .collect()
    };
    let found = match starts(false).as_slice() {
        [] => starts(true),
        found => found.to_vec(),
    };
    match found.as_slice() {
        [(start, shift)] => {
            let mut out: Vec<String> = lines[..*start].iter().map(|l| l.to_string()).collect();
            out.extend(replace.lines().map(|l| shift.apply(l)));
            out.extend(lines[start + wanted.len()..].iter().map(|l| l.to_string()));
            let mut joined = out.join("\n");
            if text.ends_with('\n') {
                joined.push('\n');
            }
            Ok(joined)
        }
        [] => Err(format!("the SEARCH text is not in the file: {}", nearest(&lines, &wanted))),
        many => Err(format!("the SEARCH text occurs {} times; include more lines to make it unique", many.len())),
    }
}

/// Where a quote that is not in the file parts from it: the longest run of its lines found
/// there (indentation aside), and the first line after it, so that a task record says
/// what the coder misquoted.
fn nearest(lines: &[&str], wanted: &[&str]) -> String {
    let quoted: Vec<&str> = wanted.iter().map(|l| l.trim()).collect();
    let first = quoted.iter().position(|l| !l.is_empty()).unwrap_or(0);
    let run = |start: usize| {
        let file = lines[start..].iter().map(|l| l.trim());
        file.zip(&quoted[first..]).take_while(|(f, q)| f == *q).count()
    };
    let best = (0..lines.len())
        .map(|start| (run(start), start))
        .filter(|&(n, _)| n > 0)
        .max_by_key(|&(n, start)| (n, std::cmp::Reverse(start)));
    let shown = |line: &str| line.trim().chars().take(80).collect::<String>();
    match best {
        None => format!("no line of it is `{}`", shown(quoted[first])),
        Some((n, start)) => {
            let (quote, file) = (quoted.get(first + n), lines.get(start + n));
            match (quote, file) {
                (Some(quote), Some(file)) => format!(
                    "its first {n} line(s) are at line {}, then it has `{}` where the file has `{}`",
                    start + 1,
                    shown(quote),
                    shown(file)
                ),
                _ => format!("its first {n} line(s) are at line {}, where the file ends", start + 1),
            }
        }
    }
}

/// How much more (or less) indentation the file's lines have than a quote of them; none
/// when `indentation` is empty.
#[derive(Debug, Clone, Default)]
struct Shift {
    indentation: String,
    more: bool,
}

impl Shift {
    /// The one shift other than none that turns every non-blank `quoted` line into its
    /// `window` line, if there is one.
    fn between(window: &[&str], quoted: &[&str]) -> Option<Shift> {
        let (file, quote) = window.iter().zip(quoted).find(|(_, q)| !q.trim().is_empty())?;
        let file = file.trim_end();
        let shift = match file.strip_suffix(*quote) {
            Some(extra) => Shift { indentation: extra.to_string(), more: true },
            None => Shift { indentation: quote.strip_suffix(file)?.to_string(), more: false },
        };
        if shift.indentation.is_empty() || !shift.indentation.chars().all(|c| c == ' ' || c == '\t') {
            return None;
        }
        let fits = window.iter().zip(quoted).all(|(f, q)| {
            if q.trim().is_empty() {
                f.trim().is_empty()
            } else {
                f.trim_end() == shift.apply(q)
            }
        });
        fits.then_some(shift)
    }

    /// `line` shifted (a line without the indentation to remove is left as it is).
    fn apply(&self, line: &str) -> String {
        if self.indentation.is_empty() {
            line.to_string()
        } else if !self.more {
            line.strip_prefix(self.indentation.as_str()).unwrap_or(line).to_string()
        } else if line.trim().is_empty() {
            String::new()
        } else {
            format!("{}{line}", self.indentation)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_with_or_without_the_file_prefix_and_fences() {
        let text = "Here is the fix.\n```python\nFILE: calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n```\nsrc/new.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n";
        let edits = parse(text).unwrap();
        assert_eq!(
            edits[0],
            Edit { path: "calc.py".into(), search: "    return a - b\n".into(), replace: "    return a + b\n".into() }
        );
        assert_eq!(edits[1], Edit { path: "src/new.py".into(), search: String::new(), replace: "x = 1\n".into() });
        let block = "FILE: calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n";
        assert_eq!(parse(&block.repeat(3)).unwrap(), vec![edits[0].clone()], "a repeated block counts once");
    }

    #[test]
    fn the_lines_that_stood_for_code_not_shown_are_not_written() {
        let text =
            "FILE: a.py\n<<<<<<< SEARCH\ndef f():\n=======\ndef f():\n    return 1\n... (lines 3-9 not shown)\n    \
                    return 2\n\n\n... (167 more lines not shown)\n>>>>>>> REPLACE\n";
        let edits = parse(text).unwrap();
        assert_eq!(edits[0].replace, "def f():\n    return 1\n    return 2\n");
    }

    #[test]
    fn a_cut_off_repeat_leaves_the_complete_blocks() {
        let block = "FILE: a.py\n<<<<<<< SEARCH\ndef f():\n=======\ndef f():\n    return 1\n>>>>>>> REPLACE\n";
        let cut = format!("{block}\n{}", &block[..30]);
        assert_eq!(before_repetition(&cut), Some(block.trim_end()));
        assert_eq!(
            before_repetition(&format!("{block}\nFILE: b.py\n<<<<<<< SEARCH\nx = 1")),
            None,
            "new text was cut off"
        );
        assert_eq!(before_repetition(&block[..40]), None, "no complete block");
        assert_eq!(before_repetition(&format!("{block}\nFILE: a.py\n")), None, "too little to tell");
        assert_eq!(before_repetition(block), None, "cut off after a block: more may have been meant");
    }

    #[test]
    fn an_answer_cut_at_the_deadline_counts_by_its_complete_blocks() {
        use crate::pipeline::answer::{Format, Refused};
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "def f():\n    return 1\n\n\ndef g():\n    return 2\n").unwrap();
        let format = EditBlocks { paths: vec!["a.py".into()], max_blocks: 2 };
        let first = "FILE: a.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 3\n>>>>>>> REPLACE\n";
        let second = "FILE: a.py\n<<<<<<< SEARCH\n    return 2\n=======\n    return";
        let refused = format.apply(dir.path(), second, Ending::Deadline);
        assert!(matches!(refused, Err(Refused::Unfinished)), "{refused:?}");
        // The same text ended by a stop string would have been closed and applied.
        format.apply(dir.path(), &format!("{first}{second}"), Ending::Deadline).unwrap();
        let text = std::fs::read_to_string(dir.path().join("a.py")).unwrap();
        assert_eq!(text, "def f():\n    return 3\n\n\ndef g():\n    return 2\n");
    }

    #[test]
    fn a_block_stopped_at_a_fence_or_marker_ends_there() {
        use crate::pipeline::answer::Format;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "def f():\n    return 1\n\n\ndef g():\n    return 2\n").unwrap();
        let format = EditBlocks { paths: vec!["a.py".into()], max_blocks: 2 };
        // What the coder wrote before the stop string `\n... (` ended it.
        let stopped = "FILE: a.py\n<<<<<<< SEARCH\ndef f():\n=======\ndef f():\n    return 3\n\n";
        assert!(format.stops().iter().all(|s| !stopped.contains(s)));
        format.apply(dir.path(), stopped, Ending::Finished).unwrap();
        let text = std::fs::read_to_string(dir.path().join("a.py")).unwrap();
        assert_eq!(text, "def f():\n    return 3\n\n\ndef g():\n    return 2\n");
        // Still open before its divider: nothing to close.
        assert!(format.apply(dir.path(), "FILE: a.py\n<<<<<<< SEARCH\ndef g():\n", Ending::Finished).is_err());
    }

    #[test]
    fn malformed_candidates_are_named() {
        assert!(matches!(parse("I would change the code."), Err(EditError::Malformed(m)) if m.contains("no SEARCH")));
        assert!(
            matches!(parse("calc.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE"), Err(EditError::Malformed(m)) if m.contains("======="))
        );
        assert!(
            matches!(parse("calc.py\n<<<<<<< SEARCH\nx\n=======\ny\n"), Err(EditError::Malformed(m)) if m.contains("REPLACE"))
        );
        assert!(
            matches!(parse("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE"), Err(EditError::Malformed(m)) if m.contains("path"))
        );
    }

    #[test]
    fn new_files_cannot_escape_through_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("new.py"), tree.path().join("dangling.py")).unwrap();
        std::fs::create_dir(tree.path().join(".git")).unwrap();
        std::os::unix::fs::symlink(tree.path().join(".git"), tree.path().join("gitlink")).unwrap();
        for path in [
            "link/x.py",
            "link/sub/x.py",
            "dangling.py",
            "../x.py",
            ".git/hooks/pre-commit",
            "gitlink/hooks/pre-commit",
        ] {
            let edit = Edit { path: path.into(), search: String::new(), replace: "x = 1\n".into() };
            assert!(matches!(apply(tree.path(), &[edit]), Err(EditError::DoesNotApply(_))), "{path}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written or made outside");
        assert_eq!(std::fs::read_dir(tree.path().join(".git")).unwrap().count(), 0, "nothing made in .git");
        let ok = Edit { path: "pkg/new.py".into(), search: String::new(), replace: "x = 1\n".into() };
        apply(tree.path(), &[ok]).unwrap();
        assert_eq!(std::fs::read_to_string(tree.path().join("pkg/new.py")).unwrap(), "x = 1\n");
    }

    #[test]
    fn a_whole_function_replaces_its_definition() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("a.py"), "def f():\n    \"\"\"One.\"\"\"\n    raise NotImplementedError\n")
            .unwrap();
        let edit =
            Edit { path: "a.py".into(), search: "def f():\n".into(), replace: "def f():\n    return 1\n".into() };
        apply(tree.path(), &[edit]).unwrap();
        assert_eq!(
            std::fs::read_to_string(tree.path().join("a.py")).unwrap(),
            "def f():\n    \"\"\"One.\"\"\"\n    return 1\n"
        );
    }

    #[test]
    fn search_text_must_match_once() {
        let text = "def f():\n    return 1   \n\ndef g():\n    return 2\n";
        assert_eq!(
            replace_once(text, "    return 2\n", "    return 3\n").unwrap(),
            text.replace("return 2", "return 3")
        );
        // Trailing whitespace differs: still one match.
        assert_eq!(
            replace_once(text, "def f():\n    return 1\n", "def f():\n    return 9\n").unwrap(),
            "def f():\n    return 9\n\ndef g():\n    return 2\n"
        );
        assert!(replace_once(text, "    return 5\n", "").unwrap_err().contains("not in the file"));
        assert!(replace_once("a\na\n", "a\n", "b\n").unwrap_err().contains("2 times"));
    }

    #[test]
    fn a_misquote_is_shown_where_it_parts_from_the_file() {
        let text = "def f(x):\n    if x is None:\n        return x\n    return x[1:-1]\n";
        let why = replace_once(text, "def f(x):\n    if x is None:\n        return None\n", "").unwrap_err();
        assert!(
            why.ends_with("its first 2 line(s) are at line 1, then it has `return None` where the file has `return x`"),
            "{why}"
        );
        let why = replace_once(text, "def g(y):\n    pass\n", "").unwrap_err();
        assert!(why.ends_with("no line of it is `def g(y):`"), "{why}");
        let why = replace_once(text, "    return x[1:-1]\n    return 2\n", "").unwrap_err();
        assert!(why.ends_with("its first 1 line(s) are at line 4, where the file ends"), "{why}");
    }

    #[test]
    fn a_quote_indented_by_another_amount_matches_and_its_replacement_follows() {
        let text = "class A:\n    def f(self):\n        if x:\n            return 1\n\n        return 2\n";
        // The method's body quoted without the class's indentation.
        let out = replace_once(text, "    if x:\n        return 1\n\n    return 2\n", "    return 3\n").unwrap();
        assert_eq!(out, "class A:\n    def f(self):\n        return 3\n");
        // Quoted with more indentation than the file has.
        let out = replace_once(
            "def g():\n    return 1\n",
            "    def g():\n        return 1\n",
            "    def g():\n        return 5\n",
        )
        .unwrap();
        assert_eq!(out, "def g():\n    return 5\n");
        // Lines shifted by different amounts are not the file's.
        assert!(replace_once(text, "if x:\n  return 1\n", "").unwrap_err().contains("not in the file"));
        // Two places fit once shifted: which one is meant cannot be told.
        let twice = "def f():\n    return 1\n\nclass B:\n    def f():\n        return 1\n";
        assert!(replace_once(twice, "  def f():\n      return 1\n", "").unwrap_err().contains("2 times"));
    }
}
