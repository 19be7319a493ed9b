//! The whole-definition form of an edit block: a REPLACE that is one complete function or
//! class replaces the file's definition of that name, when the SEARCH quotes only its head
//! (decorators, signature, docstring) or is not in the file at all. Small coders rewrite a
//! whole function far more reliably than they quote its lines: with SEARCH text alone, 39%
//! of the 1.5B coder's candidates on the eval set did not apply (evals/RESULTS.md).

use std::path::Path;

use crate::tools::{definitions, syntax_error};

/// The file with the definition replaced, or `None` when the rule does not apply: the
/// REPLACE is not a definition that parses, no single definition of the file has its
/// name, or the SEARCH applies as written and quotes more than the head.
pub fn whole_definition(path: &Path, text: &str, search: &str, replace: &str, search_applies: bool) -> Option<String> {
    let mut new = dedent(replace);
    if new.trim().is_empty() || syntax_error(path, &new).is_some() {
        return None;
    }
    let olds = definitions(path, text);
    let defs = definitions(path, &new);
    let (target, old) = defs.iter().filter(|d| d.indent == 0).find_map(|d| {
        let mut same = olds.iter().filter(|o| o.name == d.name);
        match (same.next(), same.next()) {
            (Some(old), None) => Some((d, old)),
            _ => None,
        }
    })?;
    if search_applies && !quotes_head(&text[old.head.clone()], search) {
        return None;
    }
    // A rewrite that leaves out the docstring keeps the old one: it is the specification,
    // and what doctest-style checks read.
    if let (None, Some(doc), Some((at, column))) = (&target.docstring, &old.docstring, target.body) {
        new.insert_str(at, &indent(&dedent(&text[doc.clone()]), &" ".repeat(column)));
    }
    let lead: String = text[old.lines.start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let mut body = indent(&new, &lead);
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Some(format!("{}{body}{}", &text[..old.lines.start], &text[old.lines.end..]))
}

/// Whether the SEARCH's lines (trimmed, blank ones skipped) are a run of the head's lines.
fn quotes_head(head: &str, search: &str) -> bool {
    let lines = |s: &str| s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let (head, search) = (lines(head), lines(search));
    !search.is_empty() && head.windows(search.len()).any(|w| w == search.as_slice())
}

fn leading(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// The text with the indentation its non-blank lines share removed.
fn dedent(text: &str) -> String {
    let common = text.lines().filter(|l| !l.trim().is_empty()).map(leading).min().unwrap_or(0);
    text.lines().map(|l| if l.trim().is_empty() { "" } else { &l[common..] }).map(|l| format!("{l}\n")).collect()
}

fn indent(text: &str, lead: &str) -> String {
    text.lines().map(|l| if l.trim().is_empty() { "\n".to_string() } else { format!("{lead}{l}\n") }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "import re\n\n\ndef f(x):\n    \"\"\"Double x.\n\n    >>> f(2)\n    4\n    \"\"\"\n    raise NotImplementedError\n\n\nclass C:\n    def m(self):\n        return 1\n";

    fn rewrite(search: &str, replace: &str, applies: bool) -> Option<String> {
        whole_definition(Path::new("solution.py"), FILE, search, replace, applies)
    }

    #[test]
    fn a_quoted_header_and_a_whole_function_rewrite_the_function() {
        let new = "def f(x):\n    \"\"\"Twice x.\"\"\"\n    return 2 * x\n";
        let out = rewrite("def f(x):\n", new, true).unwrap();
        assert_eq!(
            out,
            FILE.replace(
                "def f(x):\n    \"\"\"Double x.\n\n    >>> f(2)\n    4\n    \"\"\"\n    raise NotImplementedError\n",
                new
            )
        );
        // The docstring in the SEARCH is still only the head.
        assert_eq!(rewrite("def f(x):\n    \"\"\"Double x.\n", new, true).unwrap(), out);
    }

    #[test]
    fn a_rewrite_without_the_docstring_keeps_the_old_one() {
        let out = rewrite("not in the file\n", "def f(x):\n    return 2 * x\n", false).unwrap();
        assert!(
            out.contains(
                "def f(x):\n    \"\"\"Double x.\n\n    >>> f(2)\n    4\n    \"\"\"\n    return 2 * x\n\n\nclass C:"
            ),
            "{out}"
        );
    }

    #[test]
    fn methods_are_rewritten_at_their_own_indentation() {
        let out = rewrite("zzz\n", "def m(self):\n    return 2\n", false).unwrap();
        assert!(out.ends_with("class C:\n    def m(self):\n        return 2\n"), "{out}");
        // Written at the method's indentation already: the same result.
        assert_eq!(rewrite("zzz\n", "    def m(self):\n        return 2\n", false).unwrap(), out);
    }

    #[test]
    fn partial_edits_and_non_definitions_are_left_to_the_search_text() {
        // The SEARCH quotes a body statement: a plain replacement, not a rewrite.
        assert_eq!(rewrite("def m(self):\n        return 1\n", "def m(self):\n    return 3\n", true), None);
        assert_eq!(rewrite("x\n", "    return 2 * x\n", false), None, "not a definition");
        assert_eq!(rewrite("x\n", "def g():\n    return 1\n", false), None, "no definition of that name");
        assert_eq!(rewrite("x\n", "def f(x:\n    return 1\n", false), None, "does not parse");
    }
}
