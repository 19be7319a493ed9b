//! `analyze_codebase`: a map of the workspace for a planner: the tree, languages with file
//! and line counts, build files, entry points, test commands, and the top-level symbols of
//! a file or of a directory's source files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use ignore::WalkState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::lang::{language_name, Syntax};
use super::project::{self, BUILD_FILES};
use super::symbols::{self, Symbol};
use super::{walk, ToolError, Workspace};

pub const DESCRIPTION: &str = "Summarize the workspace or one directory/file of it: the file tree (respecting .gitignore, \
to a depth), languages with file and line counts, build files, entry points, detected test commands, and the top-level \
symbols (functions, types, classes, methods) of a file or of a directory's source files, via tree-sitter for Rust, Python, \
JavaScript/TypeScript and Go.";

/// Files larger than this are counted but not read for lines.
const MAX_COUNTED_BYTES: u64 = 4 * 1024 * 1024;
/// Source files whose symbols a directory summary lists.
const MAX_SYMBOL_FILES: usize = 25;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// A directory or file relative to the workspace root (default: the root).
    pub path: Option<String>,
    /// Depth of the listed tree (default 2).
    pub depth: Option<usize>,
    /// Most tree entries to list (default 300).
    pub max_entries: Option<usize>,
    /// Include top-level symbols (default true).
    pub symbols: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Language {
    pub language: &'static str,
    pub files: u64,
    pub lines: u64,
}

#[derive(Debug, Serialize)]
pub struct FileSymbols {
    pub path: String,
    pub symbols: Vec<Symbol>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub path: String,
    pub files: u64,
    pub lines: u64,
    pub languages: Vec<Language>,
    /// Directories end with `/`.
    pub tree: Vec<String>,
    pub tree_truncated: bool,
    pub build_files: Vec<String>,
    pub entry_points: Vec<String>,
    pub test_commands: Vec<&'static str>,
    pub symbols: Vec<FileSymbols>,
}

#[derive(Default)]
struct Tally {
    files: u64,
    languages: BTreeMap<&'static str, (u64, u64)>,
    entries: Vec<(String, bool)>,
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    let start = ws.resolve_content(args.path.as_deref().unwrap_or("."))?;
    let depth = args.depth.unwrap_or(2);
    let max_entries = args.max_entries.unwrap_or(300);
    let tally = Mutex::new(Tally::default());
    walk::builder(ws.root(), &start, &[])?.threads(walk::threads()).build_parallel().run(|| {
        let (tally, start) = (&tally, &start);
        Box::new(move |entry| {
            let Ok(entry) = entry else { return WalkState::Continue };
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let rel = entry.path().strip_prefix(start).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
            let lines = if is_dir { None } else { count_lines(entry.path()) };
            let mut t = tally.lock().expect("tally lock");
            if !rel.is_empty() {
                t.entries.push((rel, is_dir));
            }
            if !is_dir {
                t.files += 1;
                if let Some(language) = language_name(entry.path()) {
                    let slot = t.languages.entry(language).or_default();
                    slot.0 += 1;
                    slot.1 += lines.unwrap_or(0);
                }
            }
            WalkState::Continue
        })
    });
    let mut tally = tally.into_inner().expect("tally lock");
    tally.entries.sort();

    let shallow = |rel: &str, max: usize| rel.split('/').count() <= max;
    let mut tree: Vec<String> = tally
        .entries
        .iter()
        .filter(|(rel, _)| shallow(rel, depth))
        .map(|(rel, is_dir)| if *is_dir { format!("{rel}/") } else { rel.clone() })
        .collect();
    let tree_truncated = tree.len() > max_entries;
    tree.truncate(max_entries);

    let files: Vec<&str> = tally.entries.iter().filter(|(_, d)| !d).map(|(r, _)| r.as_str()).collect();
    let build_files: Vec<String> =
        files.iter().filter(|r| shallow(r, 3) && BUILD_FILES.contains(&file_name(r))).map(|r| r.to_string()).collect();
    let entry_points: Vec<String> = files.iter().filter(|r| is_entry_point(r)).map(|r| r.to_string()).collect();

    let mut languages: Vec<Language> =
        tally.languages.into_iter().map(|(language, (files, lines))| Language { language, files, lines }).collect();
    languages.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.language.cmp(b.language)));
    let lines = languages.iter().map(|l| l.lines).sum();

    let symbols = if args.symbols.unwrap_or(true) { outline(ws, &start, &files, &entry_points) } else { Vec::new() };
    let dir = if start.is_dir() { start.clone() } else { start.parent().unwrap_or(ws.root()).to_path_buf() };
    Ok(Output {
        path: ws.relative(&start),
        files: tally.files,
        lines,
        languages,
        tree,
        tree_truncated,
        build_files,
        entry_points,
        test_commands: project::test_commands(&dir).into_iter().map(|c| c.label()).collect(),
        symbols,
    })
}

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn count_lines(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    // Only regular files: reading a FIFO waits for a writer.
    if !meta.is_file() || meta.len() > MAX_COUNTED_BYTES || language_name(path).is_none() {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    Some(newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n")))
}

/// Where programs start, by the conventions of each ecosystem.
fn is_entry_point(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let name = *parts.last().unwrap_or(&"");
    match parts.as_slice() {
        ["src", "main.rs" | "lib.rs"] | ["src", "bin", _] => name.ends_with(".rs"),
        ["main.go"] | ["cmd", _, "main.go"] => true,
        [.., "__main__.py"] => parts.len() <= 3,
        ["main.py" | "app.py" | "manage.py" | "cli.py"] => true,
        ["index.js" | "index.ts" | "index.mjs" | "server.js" | "server.ts" | "main.js" | "main.ts"] => true,
        ["src", "index.js" | "index.ts" | "index.tsx" | "main.js" | "main.ts" | "main.tsx" | "main.py"] => true,
        _ => false,
    }
}

/// Symbols of the file itself, or of a directory's entry points and its own source files.
fn outline(ws: &Workspace, start: &Path, files: &[&str], entry_points: &[String]) -> Vec<FileSymbols> {
    let chosen: Vec<std::path::PathBuf> = if start.is_file() {
        vec![start.to_path_buf()]
    } else {
        let direct = files.iter().filter(|r| !r.contains('/'));
        let entries = entry_points.iter().map(|s| s.as_str());
        let mut chosen: Vec<_> =
            entries.chain(direct.copied()).map(|r| start.join(r)).filter(|p| Syntax::of(p).is_some()).collect();
        chosen.dedup();
        chosen.truncate(MAX_SYMBOL_FILES);
        chosen
    };
    chosen
        .into_iter()
        .filter_map(|path| {
            let syntax = Syntax::of(&path)?;
            // Entry points are named, not walked: only regular files are read (a FIFO blocks).
            if !path.is_file() {
                return None;
            }
            let source = std::fs::read_to_string(&path).ok()?;
            Some(FileSymbols { path: ws.relative(&path), symbols: symbols::outline(syntax, &source) })
        })
        .collect()
}
