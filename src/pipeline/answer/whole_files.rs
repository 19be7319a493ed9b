//! The coders' answer format for steps whose files are all short: the complete new content
//! of each file the step changes, written the way the coder was shown the files.
//!
//! ````text
//! FILE: calc.py
//! ```python
//! def add(a, b):
//!     return a + b
//! ```
//! ````
//! A 1.5B coder writes a short file whole as reliably as it writes a whole function (the
//! direct answers of `quorum eval`'s `single` and `vote` modes), with no SEARCH text to quote
//! exactly: on the eval set, a quarter of its edit-block candidates did not apply or changed
//! nothing (evals/RESULTS.md). Large files keep the edit blocks ([`crate::pipeline::answer::blocks`]), where
//! writing the file again would cost more tokens than the change; the limit is the
//! pipeline's `whole_file_lines` option.

use std::path::Path;

use crate::pipeline::answer::blocks::{self as edits, EditError};
use crate::pipeline::models::Ending;
use crate::tools::{ToolError, Workspace};

const FENCE: &str = "```";

/// Whether a file can be written whole under [`grammar`]: no line of it starts with three
/// backticks, which would end its code block.
pub fn writable(content: &str) -> bool {
    !content.lines().any(|l| l.starts_with(FENCE))
}

/// Whole files, only of `targets` and at most one each.
pub struct WholeFiles {
    pub targets: Vec<String>,
}

impl super::Format for WholeFiles {
    fn instructions(&self) -> &'static str {
        crate::prompts::WHOLE_FILES
    }

    fn request(&self) -> &'static str {
        "Write the changed files now."
    }

    /// No more files than the step may change: past them the grammar ends the answer,
    /// where a small model would start writing one again.
    fn grammar(&self) -> String {
        grammar(&self.targets, self.targets.len() as u32)
    }

    fn apply(&self, root: &Path, answer: &str, ending: Ending) -> Result<(), super::Refused> {
        let files = match ending {
            Ending::Finished => parse(answer)?,
            Ending::TokenLimit => before_repetition(answer).ok_or(super::Refused::CutOff)?,
            Ending::Deadline => {
                Some(scan(answer).0).filter(|files| !files.is_empty()).ok_or(super::Refused::Unfinished)?
            }
        };
        Ok(apply(root, &self.targets, &files)?)
    }
}

/// A GBNF grammar for one to `max_files` whole files on the given paths. A line inside a
/// file cannot start with three backticks: that line ends the file (see [`writable`]).
pub fn grammar(paths: &[String], max_files: u32) -> String {
    let more = max_files.saturating_sub(1);
    [
        format!(r#"root ::= file ("\n"? file){{0,{more}}}"#),
        r#"file ::= "FILE: " path "\n```" [a-z]* "\n" line* "```\n""#.to_string(),
        format!("path ::= {}", edits::path_rule(paths)),
        r#"line ::= "\n" | [^`\n] [^\n]* "\n" | "`" ([^`\n] [^\n]*)? "\n" | "``" ([^`\n] [^\n]*)? "\n""#.to_string(),
    ]
    .join("\n")
}

/// The files of an answer, as (path, content). A file given again is a small model
/// looping over its answer, not a revision: the first version counts.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EditError> {
    let (files, open) = scan(text);
    if let Some((path, _)) = open {
        return Err(EditError::Malformed(format!("the code block of {path} is not closed")));
    }
    if files.is_empty() {
        return Err(EditError::Malformed("no `FILE: path` followed by a code block".into()));
    }
    Ok(files)
}

/// The complete files of an answer cut off by its token limit, when what was cut off only
/// starts writing one of them again, word for word: the model was repeating itself, not
/// running out of room.
pub fn before_repetition(text: &str) -> Option<Vec<(String, String)>> {
    let (files, open) = scan(text);
    let (path, partial) = open?;
    files.iter().any(|(p, content)| *p == path && content.starts_with(partial.trim_end())).then_some(files)
}

/// A file's path and its text.
type File = (String, String);

/// The complete files in order (first versions), and the path and text of an unclosed
/// last one.
fn scan(text: &str) -> (Vec<File>, Option<File>) {
    let lines: Vec<&str> = text.lines().collect();
    let body = |from: usize, to: usize| lines[from..to].iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut files: Vec<File> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let opens = lines.get(i + 1).is_some_and(|l| l.trim_start().starts_with(FENCE));
        let Some(path) =
            lines[i].trim().starts_with("FILE:").then(|| edits::path_of(lines[i])).flatten().filter(|_| opens)
        else {
            i += 1;
            continue;
        };
        let Some(end) = (i + 2..lines.len()).find(|&j| lines[j].trim_end() == FENCE) else {
            return (files, Some((path, body((i + 2).min(lines.len()), lines.len()))));
        };
        if !files.iter().any(|(p, _)| *p == path) {
            files.push((path, body(i + 2, end)));
        }
        i = end + 1;
    }
    (files, None)
}

/// Writes the files into the tree at `root`, creating new ones. Only the `allowed` paths
/// may be written (the step's files: tests stay out of reach), and none can leave the tree.
/// A file keeps its line endings and its lack of a final newline.
pub fn apply(root: &Path, allowed: &[String], files: &[(String, String)]) -> Result<(), EditError> {
    let tree = Workspace::new(root).map_err(|e| EditError::DoesNotApply(e.to_string()))?;
    for (path, content) in files {
        if !allowed.contains(path) {
            return Err(EditError::DoesNotApply(format!("{path} is not among the files this step may change")));
        }
        if content.trim().is_empty() {
            return Err(EditError::DoesNotApply(format!("{path}: the new content is empty")));
        }
        let failed = |e: std::io::Error| EditError::DoesNotApply(format!("{path}: {e}"));
        match tree.resolve_content(path) {
            Ok(target) => {
                let old = std::fs::read_to_string(&target).map_err(failed)?;
                std::fs::write(target, like(&old, content)).map_err(failed)?
            }
            Err(ToolError::NotFound(_)) => edits::apply(
                root,
                &[edits::Edit { path: path.clone(), search: String::new(), replace: content.clone() }],
            )?,
            Err(e) => return Err(EditError::DoesNotApply(format!("{path}: {e}"))),
        }
    }
    Ok(())
}

/// `new` (LF lines, final newline) in the conventions of `old`: CRLF when it used CRLF,
/// no final newline when it had none, so that an unchanged file diffs as unchanged.
fn like(old: &str, new: &str) -> String {
    let mut text = if old.contains("\r\n") { new.replace('\n', "\r\n") } else { new.to_string() };
    if !old.is_empty() && !old.ends_with('\n') {
        text.truncate(text.trim_end_matches(['\r', '\n']).len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_parse_and_replace_the_old_ones() {
        let text = "Here it is.\nFILE: calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n\nFILE: pkg/new.py\n```\nX = 1\n```\n";
        let files = parse(text).unwrap();
        assert_eq!(
            files,
            vec![
                ("calc.py".into(), "def add(a, b):\n    return a + b\n".into()),
                ("pkg/new.py".into(), "X = 1\n".into())
            ]
        );
        let repeated = format!("{text}\nFILE: calc.py\n```python\ndef add(a, b):\n    return a - b\n```\n");
        assert_eq!(parse(&repeated).unwrap(), files, "the first version of a file counts");
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("calc.py"), "def add(a, b):\n    raise NotImplementedError\n").unwrap();
        apply(tree.path(), &["calc.py".into(), "pkg/new.py".into()], &files).unwrap();
        assert_eq!(std::fs::read_to_string(tree.path().join("calc.py")).unwrap(), files[0].1);
        assert_eq!(std::fs::read_to_string(tree.path().join("pkg/new.py")).unwrap(), "X = 1\n");
    }

    #[test]
    fn a_cut_off_repeat_leaves_the_complete_files() {
        let file = "FILE: a.py\n```python\ndef f():\n    return 1\n```\n";
        let expected = vec![("a.py".to_string(), "def f():\n    return 1\n".to_string())];
        assert_eq!(before_repetition(&format!("{file}\n{}", &file[..30])), Some(expected));
        assert_eq!(
            before_repetition(&format!("{file}\nFILE: a.py\n```python\ndef g():")),
            None,
            "a different version was cut off"
        );
        assert_eq!(before_repetition(&format!("{file}\nFILE: b.py\n```python\nx = 1")), None, "new text was cut off");
        assert_eq!(before_repetition(&file[..30]), None, "no complete file");
        assert_eq!(before_repetition(file), None, "cut off after a file: more may have been meant");
    }

    #[test]
    fn bad_answers_are_named_and_nothing_escapes_the_tree() {
        assert!(
            matches!(parse("def add(a, b):\n    return a + b\n"), Err(EditError::Malformed(m)) if m.contains("FILE"))
        );
        assert!(
            matches!(parse("FILE: calc.py\n```python\nx = 1\n"), Err(EditError::Malformed(m)) if m.contains("not closed"))
        );
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("tests")).unwrap();
        std::fs::write(tree.path().join("tests/test_a.py"), "assert True\n").unwrap();
        for path in ["../x.py", ".git/config"] {
            assert!(apply(tree.path(), &[path.to_string()], &[(path.into(), "x = 1\n".into())]).is_err(), "{path}");
        }
        let test = [("tests/test_a.py".to_string(), "x = 1\n".to_string())];
        assert!(
            matches!(apply(tree.path(), &["a.py".into()], &test), Err(EditError::DoesNotApply(m)) if m.contains("not among"))
        );
        assert_eq!(
            std::fs::read_to_string(tree.path().join("tests/test_a.py")).unwrap(),
            "assert True\n",
            "tests stay out of reach"
        );
        assert!(
            matches!(apply(tree.path(), &["a.py".into()], &[("a.py".into(), "\n".into())]), Err(EditError::DoesNotApply(m)) if m.contains("empty"))
        );
    }

    #[test]
    fn a_rewritten_file_keeps_its_line_endings() {
        assert_eq!(like("a\r\nb\r\n", "a\nc\n"), "a\r\nc\r\n");
        assert_eq!(like("a\nb", "a\nb\n"), "a\nb", "no final newline stays none");
        assert_eq!(like("", "x\n"), "x\n");
        assert!(!writable("# Title\n```python\nx = 1\n```\n"));
        assert!(writable("def f():\n    '''```'''\n"));
    }

    #[test]
    fn the_grammar_names_the_paths_and_bounds_the_files() {
        let g = grammar(&["calc.py".into()], 2);
        assert!(g.contains(r#"path ::= "calc.py""#), "{g}");
        assert!(g.contains("{0,1}"), "{g}");
    }
}
