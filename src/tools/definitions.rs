//! Where each definition of a file lies, for rewriting one whole: its lines (decorators
//! included), its head (the lines before the first statement of its body, a docstring
//! included) and its docstring. Whatever `symbols` counts as a definition, at any depth.

use std::ops::Range;
use std::path::Path;

use tree_sitter::Node;

use super::lang::Syntax;
use super::symbols;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    /// Byte range of its whole lines, from the first decorator to the end of the last line.
    pub lines: Range<usize>,
    /// Byte range of the head's whole lines: from the first decorator or the keyword up to
    /// the line of the first body statement that is not a docstring or a comment.
    pub head: Range<usize>,
    /// Byte range of the docstring's whole lines (Python), if it has one.
    pub docstring: Option<Range<usize>>,
    /// Where the first body statement's line starts, and that statement's column.
    pub body: Option<(usize, usize)>,
    /// The column it starts at.
    pub indent: usize,
}

/// Every function, method and class of `source` (in a language with a grammar), in order;
/// empty when the language is unknown.
pub fn definitions(path: &Path, source: &str) -> Vec<Definition> {
    let Some(syntax) = Syntax::of(path) else { return Vec::new() };
    let Some(tree) = symbols::parse(syntax, source) else { return Vec::new() };
    let mut out = Vec::new();
    symbols::walk(&tree, |node| out.extend(definition(syntax, node, source)));
    out
}

fn definition(syntax: Syntax, node: Node, source: &str) -> Option<Definition> {
    symbols::definition_kind(syntax, node.kind())?;
    let name = node.child_by_field_name("name")?;
    // Python's decorators wrap the definition.
    let outer = node.parent().filter(|p| p.kind() == "decorated_definition").unwrap_or(node);
    let start = line_start(source, outer.start_byte());
    let lines = start..line_end(source, outer.end_byte());
    let statements: Vec<Node> = node
        .child_by_field_name("body")
        .map(|body| {
            let mut cursor = body.walk();
            body.named_children(&mut cursor).collect()
        })
        .unwrap_or_default();
    let docstring = statements
        .first()
        .filter(|s| is_docstring(**s))
        .map(|s| line_start(source, s.start_byte())..line_end(source, s.end_byte()));
    let first = statements.iter().find(|s| !is_docstring(**s) && s.kind() != "comment" && s.kind() != "line_comment");
    let head_end = first.map(|s| line_start(source, s.start_byte())).unwrap_or(lines.end).max(start);
    let body = statements.first().map(|s| (line_start(source, s.start_byte()), s.start_position().column));
    Some(Definition {
        name: source[name.byte_range()].to_string(),
        lines,
        head: start..head_end,
        docstring,
        body,
        indent: outer.start_position().column,
    })
}

fn is_docstring(node: Node) -> bool {
    node.kind() == "expression_statement"
        && node.named_child_count() == 1
        && node.named_child(0).is_some_and(|c| c.kind() == "string")
}

fn line_start(source: &str, at: usize) -> usize {
    source[..at].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

fn line_end(source: &str, at: usize) -> usize {
    source[at..].find('\n').map(|i| at + i + 1).unwrap_or(source.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_definitions_have_heads_docstrings_and_bodies() {
        let source = "import os\n\n@cache\ndef f(a,\n      b):\n    \"\"\"Doc.\n\n    More.\n    \"\"\"\n    # why\n    return a\n\nclass C:\n    def m(self):\n        pass\n";
        let defs = definitions(Path::new("x.py"), source);
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["f", "C", "m"]);
        let f = &defs[0];
        assert_eq!(&source[f.lines.clone()], &source[11..source.find("\nclass").unwrap()]);
        assert_eq!(
            &source[f.head.clone()],
            "@cache\ndef f(a,\n      b):\n    \"\"\"Doc.\n\n    More.\n    \"\"\"\n    # why\n"
        );
        assert_eq!(&source[f.docstring.clone().unwrap()], "    \"\"\"Doc.\n\n    More.\n    \"\"\"\n");
        assert_eq!(defs[2].indent, 4);
        assert_eq!(&source[defs[2].lines.clone()], "    def m(self):\n        pass\n");
        assert!(definitions(Path::new("notes.txt"), source).is_empty());
    }
}
