//! Languages by file extension: a name for statistics, and the tree-sitter grammar for
//! the languages whose symbols quorum understands.

use std::path::Path;

/// Languages with a tree-sitter grammar built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
}

impl Syntax {
    pub fn of(path: &Path) -> Option<Syntax> {
        Some(match extension(path)?.as_str() {
            "rs" => Syntax::Rust,
            "py" | "pyi" => Syntax::Python,
            "js" | "mjs" | "cjs" | "jsx" => Syntax::JavaScript,
            "ts" | "mts" | "cts" => Syntax::TypeScript,
            "tsx" => Syntax::Tsx,
            "go" => Syntax::Go,
            _ => return None,
        })
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Syntax::Rust => tree_sitter_rust::LANGUAGE.into(),
            Syntax::Python => tree_sitter_python::LANGUAGE.into(),
            Syntax::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Syntax::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Syntax::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Syntax::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase())
}

/// A display name for line statistics, or `None` for files that are not code or docs.
pub fn language_name(path: &Path) -> Option<&'static str> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name {
        "Makefile" | "makefile" | "GNUmakefile" => return Some("Makefile"),
        "Dockerfile" => return Some("Dockerfile"),
        "CMakeLists.txt" => return Some("CMake"),
        _ => {}
    }
    Some(match extension(path)?.as_str() {
        "rs" => "Rust",
        "py" | "pyi" => "Python",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "mts" | "cts" | "tsx" => "TypeScript",
        "go" => "Go",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "C++",
        "java" => "Java",
        "kt" | "kts" => "Kotlin",
        "swift" => "Swift",
        "rb" => "Ruby",
        "php" => "PHP",
        "cs" => "C#",
        "scala" => "Scala",
        "lua" => "Lua",
        "sh" | "bash" | "zsh" => "Shell",
        "html" | "htm" => "HTML",
        "css" | "scss" | "sass" => "CSS",
        "vue" => "Vue",
        "svelte" => "Svelte",
        "sql" => "SQL",
        "md" | "markdown" => "Markdown",
        "rst" => "reStructuredText",
        "txt" => "Text",
        "toml" => "TOML",
        "yaml" | "yml" => "YAML",
        "json" => "JSON",
        "xml" => "XML",
        "proto" => "Protobuf",
        "cmake" => "CMake",
        _ => return None,
    })
}
