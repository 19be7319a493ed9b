//! `find_references`: where a symbol is defined and used. A whole-word search finds the
//! candidate files fast; files in a language with a grammar are then parsed, so that
//! definitions are told from uses and comments and strings drop out. Other files report
//! their whole-word matches as plain text references.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lang::Syntax;
use super::{search, symbols, ToolError, Workspace};

pub const DESCRIPTION: &str = "Find the definitions and references of a symbol (function, type, variable). \
Rust, Python, JavaScript/TypeScript and Go are parsed with tree-sitter (comments and strings excluded, definitions marked); \
other files are matched on word boundaries. Each result has file, line, column and the line's text.";

const DEFAULT_RESULTS: usize = 200;
/// Candidate lines read before parsing; a name used more often than this is truncated.
const MAX_CANDIDATES: usize = 20_000;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The identifier, e.g. `parse_config` or `Config`.
    pub symbol: String,
    /// A file or directory to search, relative to the workspace root (default: all of it).
    pub path: Option<String>,
    /// Glob filters; a leading `!` excludes.
    #[serde(default)]
    pub glob: Vec<String>,
    /// Most results to return, definitions first (default 200).
    pub max_results: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Location {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub text: String,
    /// For definitions: what is defined (function, struct, class, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// `syntax` when found by parsing, `text` when by a word match.
    pub via: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub symbol: String,
    pub definitions: Vec<Location>,
    pub references: Vec<Location>,
    pub truncated: bool,
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    let symbol = args.symbol.trim().to_string();
    let valid = !symbol.is_empty() && symbol.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if !valid {
        return Err(ToolError::invalid(format!("`{symbol}` is not an identifier")));
    }
    let start = ws.resolve_content(args.path.as_deref().unwrap_or("."))?;
    let max = args.max_results.unwrap_or(DEFAULT_RESULTS).clamp(1, 2000);
    let matcher = search::word_matcher(&symbol)?;
    let candidates = search::search(ws, &start, &args.glob, &matcher, 0, MAX_CANDIDATES)?;
    let mut truncated = candidates.truncated;

    let mut by_file: BTreeMap<String, Vec<search::Hit>> = BTreeMap::new();
    for hit in candidates.matches {
        by_file.entry(hit.path.clone()).or_default().push(hit);
    }
    let (mut definitions, mut references) = (Vec::new(), Vec::new());
    for (path, hits) in by_file {
        let full = ws.root().join(&path);
        let parsed = Syntax::of(&full).and_then(|syntax| Some((syntax, std::fs::read_to_string(&full).ok()?)));
        let Some((syntax, source)) = parsed else {
            for hit in hits {
                let column = hit.text.find(&symbol).map(|c| c as u64 + 1).unwrap_or(1);
                references.push(Location {
                    path: path.clone(),
                    line: hit.line,
                    column,
                    text: hit.text,
                    kind: None,
                    via: "text",
                });
            }
            continue;
        };
        let lines: Vec<&str> = source.lines().collect();
        for occurrence in symbols::occurrences(syntax, &source, &symbol) {
            let text = lines.get(occurrence.line as usize - 1).map(|l| l.trim_end().to_string()).unwrap_or_default();
            let location = Location {
                path: path.clone(),
                line: occurrence.line,
                column: occurrence.column,
                text,
                kind: occurrence.kind,
                via: "syntax",
            };
            if occurrence.kind.is_some() {
                definitions.push(location);
            } else {
                references.push(location);
            }
        }
    }
    if definitions.len() + references.len() > max {
        truncated = true;
        definitions.truncate(max);
        references.truncate(max - definitions.len());
    }
    Ok(Output { symbol, definitions, references, truncated })
}
