//! Which lines of a file too long for its budget the models see. A model shown only a long
//! file's first lines cannot see the function a task is about, and writes one from its
//! name: so the blocks that name what the task names come first (a definition before a
//! use, then what those definitions call), then the file's head, shown in file order with
//! a marker line for each run of lines left out.

use std::ops::Range;

/// How a line that stands for lines not shown starts; it ends with [`NOT_SHOWN`].
pub const CUT: &str = "...";
const NOT_SHOWN: &str = "not shown)";

/// Blocks longer than this are split again at their body's indentation (the methods of a
/// class, the functions of an impl), each part shown under the block's first line.
const SPLIT_LINES: usize = 40;

/// What makes a block of a file worth showing.
#[derive(Debug, Default, Clone)]
pub struct Focus {
    /// Code names and messages the task names: a block that defines one ranks first.
    pub names: Vec<String>,
    /// Plain words of the task, which count only where a block defines them ("windowed"):
    /// a report about "classes" would otherwise rank every `class` line with the code it
    /// is about, shown before it in file order, and a small coder edits the first code it
    /// is shown.
    pub words: Vec<String>,
    /// Lines a change wrote: the blocks holding them are what a reviewer must see.
    pub lines: Vec<String>,
}

/// Whether a file's text was cut to fit (it holds a marker line).
pub fn is_cut(content: &str) -> bool {
    content.lines().any(is_marker)
}

/// Whether `line` stands for lines not shown.
pub fn is_marker(line: &str) -> bool {
    let line = line.trim();
    line.starts_with(CUT) && line.ends_with(NOT_SHOWN)
}

/// The tokens of the longest block of `content` (a function, a method of a long class):
/// what rewriting one definition whole costs an answer.
pub fn longest_block(content: &str, count: &dyn Fn(&str) -> usize) -> usize {
    let lines: Vec<&str> = content.lines().filter(|l| !is_marker(l)).collect();
    units(&lines).iter().map(|u| count(&lines[u.lines.clone()].join("\n"))).max().unwrap_or(0)
}

/// `content` within `budget` tokens (`count` counts them): whole when it fits, else the
/// blocks `focus` ranks, else its first lines. None when not even one line fits.
pub fn fit(content: &str, budget: usize, focus: &Focus, count: &dyn Fn(&str) -> usize) -> Option<(String, usize)> {
    let whole = count(content);
    if whole <= budget {
        return Some((content.to_string(), whole));
    }
    let lines: Vec<&str> = content.lines().collect();
    let text = focused(&lines, budget, focus, count).or_else(|| prefix(&lines, budget, count))?;
    let tokens = count(&text);
    Some((text, tokens))
}

/// The longest run of whole first lines within `budget`, and a marker for the rest.
fn prefix(lines: &[&str], budget: usize, count: &dyn Fn(&str) -> usize) -> Option<String> {
    let shown = longest_prefix(lines, budget, count);
    let head: Range<usize> = 0..shown;
    (shown > 0).then(|| render(lines, std::slice::from_ref(&head)))
}

/// How many first lines of `lines` fit `budget` with a marker line after them.
fn longest_prefix(lines: &[&str], budget: usize, count: &dyn Fn(&str) -> usize) -> usize {
    let (mut lo, mut hi) = (0, lines.len());
    // Binary search on the number of lines: token counts grow with the prefix.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(&lines[..mid].join("\n")) + MARKER_TOKENS <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// What one marker line costs, about.
const MARKER_TOKENS: usize = 12;

/// A block of lines, and the line it is shown under (a class's `class` line for a method).
#[derive(Debug, Clone, PartialEq)]
struct Unit {
    lines: Range<usize>,
    header: Option<usize>,
}

/// The blocks `focus` names, best first, as many as fit, with the file's head when room is
/// left; None when no block names anything of the focus.
fn focused(lines: &[&str], budget: usize, focus: &Focus, count: &dyn Fn(&str) -> usize) -> Option<String> {
    let units = units(lines);
    let scores = scores(lines, &units, focus);
    let mut order: Vec<usize> = (0..units.len()).filter(|&i| scores[i] > 0).collect();
    if order.is_empty() {
        return None;
    }
    order.sort_by_key(|&i| (std::cmp::Reverse(scores[i]), units[i].lines.start));
    // The head (a module's docstring and imports) after every named block, when room is left.
    if !order.contains(&0) {
        order.push(0);
    }
    let mut shown: Vec<Range<usize>> = Vec::new();
    let mut left = budget;
    for (rank, &i) in order.iter().enumerate() {
        let unit = &units[i];
        let header = unit.header.filter(|h| !shown.iter().any(|r| r.contains(h)));
        let mut range = unit.lines.clone();
        let mut cost = count(&lines[range.clone()].join("\n")) + MARKER_TOKENS;
        cost += header.map_or(0, |h| count(lines[h]) + 1);
        if cost > left {
            if rank > 0 {
                continue;
            }
            // The best block alone is too long: its first lines.
            let head_cost = header.map_or(0, |h| count(lines[h]) + 1);
            let fits = longest_prefix(&lines[range.clone()], left.saturating_sub(head_cost), count);
            if fits == 0 {
                return None;
            }
            range.end = range.start + fits;
            cost = left;
        }
        left -= cost;
        shown.extend(header.map(|h| h..h + 1));
        shown.push(range);
    }
    shown.sort_by_key(|r| r.start);
    Some(render(lines, &shown))
}

/// `lines` with only `shown` (sorted) kept, each run left out replaced by one marker line.
fn render(lines: &[&str], shown: &[Range<usize>]) -> String {
    let mut out = String::new();
    let mut next = 0;
    for range in shown {
        if range.start > next {
            out.push_str(&marker(next, range.start, lines.len()));
        }
        for line in &lines[range.start.max(next)..range.end] {
            out.push_str(line);
            out.push('\n');
        }
        next = next.max(range.end);
    }
    if next < lines.len() {
        out.push_str(&marker(next, lines.len(), lines.len()));
    }
    out
}

fn marker(from: usize, to: usize, total: usize) -> String {
    if to == total && from > 0 {
        format!("{CUT} ({} more lines {NOT_SHOWN}\n", to - from)
    } else {
        format!("{CUT} (lines {}-{} {NOT_SHOWN}\n", from + 1, to)
    }
}

/// The file's blocks: a line at no indentation after a blank line starts one; a block
/// longer than [`SPLIT_LINES`] is split again at its body's indentation.
fn units(lines: &[&str]) -> Vec<Unit> {
    let mut units = Vec::new();
    for block in split(lines, 0..lines.len(), 0) {
        let body = block.start + 1..block.end;
        let inner = (block.len() > SPLIT_LINES).then(|| body_indent(lines, body.clone())).flatten();
        match inner {
            Some(indent) => {
                units.push(Unit { lines: block.start..block.start + 1, header: None });
                let header = Some(block.start);
                units.extend(split(lines, body, indent).into_iter().map(|lines| Unit { lines, header }));
            }
            None => units.push(Unit { lines: block, header: None }),
        }
    }
    units
}

/// `range` cut before each line at exactly `indent` columns that follows a blank line
/// (closing brackets stay with what they close).
fn split(lines: &[&str], range: Range<usize>, indent: usize) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    let mut start = range.start;
    for i in range.start + 1..range.end {
        let line = lines[i];
        let starts = !line.trim().is_empty()
            && indentation(line) == indent
            && !line.trim_start().starts_with(['}', ')', ']'])
            && lines[i - 1].trim().is_empty();
        if starts {
            blocks.push(start..i);
            start = i;
        }
    }
    if start < range.end {
        blocks.push(start..range.end);
    }
    blocks
}

/// The least indentation of a block's non-blank body lines, when deeper than none.
fn body_indent(lines: &[&str], body: Range<usize>) -> Option<usize> {
    lines[body].iter().filter(|l| !l.trim().is_empty()).map(|l| indentation(l)).filter(|&n| n > 0).min()
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Each unit's score: a focus name in its first line 10, elsewhere 3 (once per name); a
/// focus word it defines 10 (not its `class` keyword); holding a line of the change 10;
/// 4 more for a part of a long definition that ranks 10 (the body of the function the
/// task names, before the lines elsewhere that only mention it, such as an `__all__`);
/// then 5 for defining a name that a named definition calls.
fn scores(lines: &[&str], units: &[Unit], focus: &Focus) -> Vec<u32> {
    let text = |u: &Unit| &lines[u.lines.clone()];
    let mut scores: Vec<u32> = units
        .iter()
        .map(|u| {
            let body = text(u);
            let signature = signature(body);
            let named: u32 = focus
                .names
                .iter()
                .filter(|n| body.iter().any(|l| mentions(l, n)))
                .map(|n| if mentions(signature, n) { 10 } else { 3 })
                .sum::<u32>()
                + 10 * focus.words.iter().filter(|w| defines(signature, w)).count() as u32;
            let changed = focus.lines.iter().any(|f| body.iter().any(|l| l.trim() == f));
            named + if changed { 10 } else { 0 }
        })
        .collect();
    let named_headers: Vec<usize> =
        units.iter().zip(&scores).filter(|(u, &s)| s >= 10 && u.lines.len() == 1).map(|(u, _)| u.lines.start).collect();
    for (unit, score) in units.iter().zip(scores.iter_mut()) {
        if unit.header.is_some_and(|h| named_headers.contains(&h)) {
            *score += 4;
        }
    }
    let called: Vec<&str> = units
        .iter()
        .zip(&scores)
        .filter(|(_, &s)| s >= 10)
        .flat_map(|(u, _)| text(u).iter().flat_map(|l| calls(l)))
        .collect();
    for (unit, score) in units.iter().zip(scores.iter_mut()) {
        let signature = signature(text(unit));
        if called.iter().any(|c| defines(signature, c)) {
            *score += 5;
        }
    }
    scores
}

/// A block's first line that is not a decorator, attribute or comment.
fn signature<'a>(block: &[&'a str]) -> &'a str {
    block.iter().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with(['@', '#', '/'])).unwrap_or("")
}

/// Whether `line` defines `name`: `def name(`, `fn name<`, `class name:` and the like.
fn defines(line: &str, name: &str) -> bool {
    const KEYWORDS: &[&str] = &["def", "fn", "class", "struct", "enum", "trait", "function", "func", "type"];
    let words: Vec<&str> = line.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    words.windows(2).any(|w| KEYWORDS.contains(&w[0]) && w[1] == name)
}

/// The names `line` calls (`name(`, the last part of `a.name(`).
fn calls(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices('(').filter_map(move |(at, _)| {
        let before = &line[..at];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let name = &before[start..];
        (name.len() >= 3 && !name.starts_with(char::is_numeric)).then_some(name)
    })
}

/// Whether `line` holds `name` as a whole word (or, for a phrase, at all).
pub fn mentions(line: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(name).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token a word, about.
    fn count(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn names(names: &[&str]) -> Focus {
        Focus { names: names.iter().map(|n| n.to_string()).collect(), ..Focus::default() }
    }

    fn module() -> String {
        let mut text = String::from("\"\"\"A module.\"\"\"\nimport re\n\n");
        for i in 0..30 {
            text.push_str(&format!("def filler_{i}(x):\n    return x + {i} + {i} + {i}\n\n"));
        }
        text.push_str("def ordinal(number):\n    return 'th' if number % 100 == 11 else 'st'\n\n");
        text.push_str("def ordinalize(number):\n    return str(number) + ordinal(number)\n\n");
        text.push_str("def later(x):\n    return x\n");
        text
    }

    #[test]
    fn a_long_file_shows_the_function_the_task_names_and_what_it_calls_not_its_first_lines() {
        let text = module();
        let focus = names(&["ordinalize", "gives"]);
        let (shown, tokens) = fit(&text, 60, &focus, &count).unwrap();
        assert!(tokens <= 60, "{tokens}: {shown}");
        assert!(shown.contains("def ordinalize(number):\n    return str(number) + ordinal(number)\n"), "{shown}");
        assert!(shown.contains("def ordinal(number):"), "what it calls: {shown}");
        assert!(shown.contains("\"\"\"A module.\"\"\"\nimport re\n"), "the head when room is left: {shown}");
        assert!(!shown.contains("filler_29"), "{shown}");
        assert!(shown.contains("... (lines 4-93 not shown)\n"), "{shown}");
        assert!(shown.ends_with("... (2 more lines not shown)\n"), "{shown}");
        assert!(is_cut(&shown));
        assert!(!is_cut(&text));
    }

    #[test]
    fn a_plain_word_of_the_task_counts_only_where_a_block_defines_it() {
        let mut text =
            String::from("import re\n\n\nclass Descr:\n    def __init__(self, name):\n        self.name = name\n\n");
        for i in 0..30 {
            text.push_str(&format!("def filler_{i}(x):\n    return x + {i} + {i} + {i}\n\n"));
        }
        text.push_str("def add_metaclass(metaclass):\n    return metaclass\n");
        let focus = |words: &[&str]| Focus {
            words: words.iter().map(|w| w.to_string()).collect(),
            ..names(&["add_metaclass"])
        };
        // six/0's report says "class": every `class` line mentions it.
        let (shown, _) = fit(&text, 40, &focus(&["class", "slot"]), &count).unwrap();
        assert!(shown.contains("def add_metaclass(metaclass):"), "{shown}");
        assert!(!shown.contains("class Descr"), "a block that only uses the word: {shown}");
        let (shown, _) = fit(&text, 40, &focus(&["Descr"]), &count).unwrap();
        assert!(shown.contains("class Descr:\n    def __init__(self, name):"), "a block that defines it: {shown}");
    }

    #[test]
    fn the_body_of_a_long_named_function_comes_before_lines_that_only_mention_it() {
        // more-itertools/2: `__all__` named `windowed`, and the excerpt showed it whole and
        // `def windowed` with only its docstring's first lines.
        let mut text = String::from("__all__ = [\n");
        for i in 0..40 {
            text.push_str(&format!("    'name_{i}',\n"));
        }
        text.push_str("    'windowed',\n]\n\n\n");
        for i in 0..10 {
            text.push_str(&format!("def filler_{i}(x):\n    return x + {i} + {i} + {i}\n\n"));
        }
        text.push_str("def windowed(seq, n, step=2):\n    \"\"\"Windows of *n*: windowed([1, 2], 1).\n\n");
        for i in 0..40 {
            text.push_str(&format!("    Line {i} of the docs.\n"));
        }
        text.push_str("    \"\"\"\n\n    if n < 0:\n        raise ValueError('n')\n\n    return iter(seq[::step])\n");
        let (shown, _) = fit(&text, 90, &names(&["windowed"]), &count).unwrap();
        assert!(shown.contains("def windowed(seq, n, step=2):"), "{shown}");
        assert!(shown.contains("    return iter(seq[::step])"), "the body: {shown}");
        assert!(!shown.contains("'name_0'"), "{shown}");
    }

    #[test]
    fn a_file_that_fits_is_whole_and_one_that_names_nothing_shows_its_first_lines() {
        let text = module();
        let (whole, _) = fit(&text, 10_000, &Focus::default(), &count).unwrap();
        assert_eq!(whole, text);
        let (head, tokens) = fit(&text, 40, &names(&["faster"]), &count).unwrap();
        assert!(head.starts_with("\"\"\"A module.\"\"\"\nimport re\n") && tokens <= 40, "{head}");
        assert!(head.ends_with("more lines not shown)\n") && !head.contains("ordinalize"), "{head}");
        assert!(fit(&text, 3, &Focus::default(), &count).is_none());
    }

    #[test]
    fn a_method_of_a_long_class_is_shown_under_its_class_line() {
        let mut text = String::from("import os\n\nclass Big:\n    \"\"\"Doc.\"\"\"\n\n");
        for i in 0..20 {
            text.push_str(&format!("    def m_{i}(self):\n        return {i}\n\n"));
        }
        text.push_str("    def strip_semicolon(self, sql):\n        return sql.rstrip(';')\n");
        let focus = names(&["strip_semicolon", "option"]);
        let (shown, _) = fit(&text, 30, &focus, &count).unwrap();
        assert!(shown.contains("class Big:\n... (lines"), "{shown}");
        assert!(shown.contains("    def strip_semicolon(self, sql):\n        return sql.rstrip(';')\n"), "{shown}");
        assert!(!shown.contains("m_19"), "{shown}");
    }

    #[test]
    fn the_longest_block_is_the_longest_definition_shown() {
        let (shown, _) = fit(&module(), 60, &names(&["ordinalize"]), &count).unwrap();
        // `def ordinal(number):` and its return line, 12 words; the markers do not count.
        assert_eq!(longest_block(&shown, &count), 12);
    }

    #[test]
    fn a_reviewer_sees_the_blocks_a_change_wrote() {
        let text = module();
        let focus = Focus { lines: vec!["return x + 7 + 7 + 7".into()], ..Focus::default() };
        let (shown, _) = fit(&text, 30, &focus, &count).unwrap();
        assert!(shown.contains("def filler_7(x):"), "{shown}");
    }
}
