//! Symbols through tree-sitter: the top-level definitions of a file (with the methods of
//! its types and classes), and the occurrences of one identifier split into definitions
//! and references. Comments and strings are never identifiers, so they never match.

use serde::Serialize;
use tree_sitter::{Node, Parser, Tree};

use super::lang::Syntax;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Symbol {
    pub name: String,
    /// function, method, struct, enum, trait, type, class, interface, const, module, macro, impl
    pub kind: &'static str,
    pub line: u64,
    /// The type or class a method belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

pub fn parse(syntax: Syntax, source: &str) -> Option<Tree> {
    let mut parser = Parser::new();
    parser.set_language(&syntax.grammar()).ok()?;
    parser.parse(source, None)
}

fn text<'a>(node: Node, source: &'a str) -> &'a str {
    &source[node.byte_range()]
}

fn line(node: Node) -> u64 {
    node.start_position().row as u64 + 1
}

/// What a definition node declares, by language.
pub fn definition_kind(syntax: Syntax, kind: &str) -> Option<&'static str> {
    Some(match (syntax, kind) {
        (Syntax::Rust, "function_item" | "function_signature_item") => "function",
        (Syntax::Rust, "struct_item") => "struct",
        (Syntax::Rust, "enum_item") => "enum",
        (Syntax::Rust, "union_item") => "union",
        (Syntax::Rust, "trait_item") => "trait",
        (Syntax::Rust, "type_item") => "type",
        (Syntax::Rust, "const_item" | "static_item") => "const",
        (Syntax::Rust, "mod_item") => "module",
        (Syntax::Rust, "macro_definition") => "macro",
        (Syntax::Python, "function_definition") => "function",
        (Syntax::Python, "class_definition") => "class",
        (Syntax::JavaScript | Syntax::TypeScript | Syntax::Tsx, kind) => match kind {
            "function_declaration" | "generator_function_declaration" | "function_signature" => "function",
            "class_declaration" | "abstract_class_declaration" | "class" => "class",
            "method_definition" | "method_signature" | "abstract_method_signature" => "method",
            "interface_declaration" => "interface",
            "type_alias_declaration" => "type",
            "enum_declaration" => "enum",
            "variable_declarator" => "const",
            _ => return None,
        },
        (Syntax::Go, "function_declaration") => "function",
        (Syntax::Go, "method_declaration") => "method",
        (Syntax::Go, "type_spec" | "type_alias") => "type",
        (Syntax::Go, "const_spec" | "var_spec") => "const",
        _ => return None,
    })
}

/// The top-level symbols of a file, and the methods of its impls, classes and traits.
pub fn outline(syntax: Syntax, source: &str) -> Vec<Symbol> {
    let Some(tree) = parse(syntax, source) else { return Vec::new() };
    let mut out = Vec::new();
    let root = tree.root_node();
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        top_level(syntax, child, source, &mut out);
    }
    out
}

fn top_level(syntax: Syntax, node: Node, source: &str, out: &mut Vec<Symbol>) {
    let kind = node.kind();
    // Wrappers whose inner declaration is what counts.
    if matches!(kind, "export_statement" | "decorated_definition" | "ambient_declaration") {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            top_level(syntax, child, source, out);
        }
        return;
    }
    if matches!(
        kind,
        "lexical_declaration" | "variable_declaration" | "type_declaration" | "const_declaration" | "var_declaration"
    ) {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            top_level(syntax, child, source, out);
        }
        return;
    }
    if syntax == Syntax::Rust && kind == "impl_item" {
        let name = node.child_by_field_name("type").map(|t| text(t, source).to_string());
        if let Some(name) = &name {
            let label = match node.child_by_field_name("trait") {
                Some(tr) => format!("{} for {name}", text(tr, source)),
                None => name.clone(),
            };
            out.push(Symbol { name: label, kind: "impl", line: line(node), parent: None });
        }
        members(syntax, node, source, name, out);
        return;
    }
    let Some(def) = definition_kind(syntax, kind) else { return };
    let Some(name_node) = node.child_by_field_name("name") else { return };
    let name = text(name_node, source).to_string();
    // A JS `const f = () => ...` is a function; other consts only at the top level.
    let def = match node.child_by_field_name("value").map(|v| v.kind()) {
        Some("arrow_function" | "function_expression" | "function") => "function",
        _ => def,
    };
    out.push(Symbol { name: name.clone(), kind: def, line: line(node), parent: None });
    if matches!(def, "class" | "trait" | "interface") {
        members(syntax, node, source, Some(name), out);
    }
}

/// Methods declared in the body of an impl, trait or class.
fn members(syntax: Syntax, node: Node, source: &str, parent: Option<String>, out: &mut Vec<Symbol>) {
    let Some(body) = node.child_by_field_name("body") else { return };
    let mut cursor = body.walk();
    for child in body.named_children(&mut cursor) {
        let child = if child.kind() == "decorated_definition" {
            match child.child_by_field_name("definition") {
                Some(inner) => inner,
                None => continue,
            }
        } else {
            child
        };
        let kind = match definition_kind(syntax, child.kind()) {
            Some("function" | "method") => "method",
            _ => continue,
        };
        if let Some(name) = child.child_by_field_name("name") {
            out.push(Symbol { name: text(name, source).to_string(), kind, line: line(child), parent: parent.clone() });
        }
    }
}

/// One occurrence of an identifier.
#[derive(Debug, Clone, Serialize)]
pub struct Occurrence {
    pub line: u64,
    /// 1-based, in bytes.
    pub column: u64,
    /// For definitions: what is defined (function, struct, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

fn is_identifier(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "type_identifier"
            | "field_identifier"
            | "property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "package_identifier"
            | "private_property_identifier"
    )
}

/// Every identifier in the file spelled `name`, each marked as a definition when it is the
/// name of a definition node.
pub fn occurrences(syntax: Syntax, source: &str, name: &str) -> Vec<Occurrence> {
    let Some(tree) = parse(syntax, source) else { return Vec::new() };
    let mut out = Vec::new();
    walk(&tree, |node| {
        if is_identifier(node.kind()) && text(node, source) == name {
            let kind = node.parent().and_then(|p| {
                let is_name = p.child_by_field_name("name").is_some_and(|n| n.id() == node.id());
                if is_name {
                    definition_kind(syntax, p.kind())
                } else {
                    None
                }
            });
            let pos = node.start_position();
            out.push(Occurrence { line: pos.row as u64 + 1, column: pos.column as u64 + 1, kind });
        }
    });
    out
}

/// Visits every node in pre-order, without recursion: files can nest deeply.
pub fn walk<'t>(tree: &'t Tree, mut visit: impl FnMut(Node<'t>)) {
    let mut cursor = tree.walk();
    'walk: loop {
        visit(cursor.node());
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// The first line with a syntax error, for files in a language with a grammar; `None`
/// when the file parses (or its language is unknown).
pub fn syntax_error(path: &std::path::Path, source: &str) -> Option<u64> {
    let tree = parse(Syntax::of(path)?, source)?;
    let root = tree.root_node();
    if !root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            return Some(line(node));
        }
        // Descend into the first child that holds an error.
        if !cursor.goto_first_child() {
            return Some(line(node));
        }
        while !cursor.node().has_error() {
            if !cursor.goto_next_sibling() {
                return Some(line(node));
            }
        }
    }
}
