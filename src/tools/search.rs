//! `search_docs`: ripgrep's engine (the `grep` and `ignore` crates) over the workspace:
//! literal or regex, smart case, context lines, glob filters, a result cap. The same search
//! finds candidate lines for `find_references`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use grep::regex::{RegexMatcher, RegexMatcherBuilder};
use grep::searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch};
use ignore::WalkState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{walk, ToolError, Workspace};

pub const DESCRIPTION: &str = "Search the workspace's code and docs like ripgrep: a literal string (default) or a regex, \
smart case unless case_sensitive is given, with context lines, glob filters (\"*.rs\", \"!tests/**\") and a result cap. \
Respects .gitignore; skips hidden and binary files.";

const DEFAULT_RESULTS: usize = 50;
/// Bytes a compiled query may take.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const MAX_RESULTS: usize = 1000;
/// Long lines (minified files) are cut to this many characters.
const MAX_LINE_CHARS: usize = 400;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// What to look for.
    pub query: String,
    /// Treat the query as a regular expression (Rust regex syntax).
    #[serde(default)]
    pub regex: bool,
    /// Match case exactly; default: smart case (case-insensitive unless the query has capitals).
    pub case_sensitive: Option<bool>,
    /// Only whole words.
    #[serde(default)]
    pub word: bool,
    /// A file or directory to search, relative to the workspace root (default: all of it).
    pub path: Option<String>,
    /// Glob filters; a leading `!` excludes.
    #[serde(default)]
    pub glob: Vec<String>,
    /// Lines of context before and after each match (default 2, at most 10).
    pub context: Option<usize>,
    /// Most matches to return (default 50, at most 1000).
    pub max_results: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub path: String,
    pub line: u64,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub matches: Vec<Hit>,
    /// More matches exist than were returned.
    pub truncated: bool,
    pub files_searched: usize,
}

pub fn run(ws: &Workspace, args: Args) -> Result<Output, ToolError> {
    if args.query.is_empty() {
        return Err(ToolError::invalid("query is empty"));
    }
    let mut builder = RegexMatcherBuilder::new();
    // A regex such as `(a{1000}){1000}` compiles to a program of millions of states.
    builder.fixed_strings(!args.regex).word(args.word).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT);
    match args.case_sensitive {
        Some(yes) => builder.case_insensitive(!yes),
        None => builder.case_smart(true),
    };
    let matcher = builder.build(&args.query).map_err(|e| ToolError::invalid(format!("query: {e}")))?;
    let start = ws.resolve_content(args.path.as_deref().unwrap_or("."))?;
    let max = args.max_results.unwrap_or(DEFAULT_RESULTS).clamp(1, MAX_RESULTS);
    search(ws, &start, &args.glob, &matcher, args.context.unwrap_or(2).min(10), max)
}

/// Searches every file under `start` in parallel; returns matches sorted by path and line.
pub fn search(
    ws: &Workspace,
    start: &Path,
    globs: &[String],
    matcher: &RegexMatcher,
    context: usize,
    max: usize,
) -> Result<Output, ToolError> {
    let found = AtomicUsize::new(0);
    let files = AtomicUsize::new(0);
    let hits = Mutex::new(Vec::new());
    let walker = walk::builder(ws.root(), start, globs)?.threads(walk::threads()).build_parallel();
    walker.run(|| {
        let mut searcher = SearcherBuilder::new()
            .line_number(true)
            .before_context(context)
            .after_context(context)
            .binary_detection(BinaryDetection::quit(0))
            .build();
        let (found, files, hits) = (&found, &files, &hits);
        Box::new(move |entry| {
            // One match past the cap tells that the result is truncated.
            if found.load(Ordering::Relaxed) > max {
                return WalkState::Quit;
            }
            let Ok(entry) = entry else { return WalkState::Continue };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            files.fetch_add(1, Ordering::Relaxed);
            let mut sink =
                Collect { path: ws.relative(entry.path()), hits: Vec::new(), before: Vec::new(), found, limit: max };
            // Unreadable files are skipped, as ripgrep does.
            if searcher.search_path(matcher, entry.path(), &mut sink).is_ok() && !sink.hits.is_empty() {
                hits.lock().expect("hits lock").extend(sink.hits);
            }
            WalkState::Continue
        })
    });
    let mut matches = hits.into_inner().expect("hits lock");
    matches.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
    let truncated = matches.len() > max;
    matches.truncate(max);
    Ok(Output { matches, truncated, files_searched: files.into_inner() })
}

/// A matcher for `find_references`: the symbol as a whole word, literally.
pub fn word_matcher(symbol: &str) -> Result<RegexMatcher, ToolError> {
    RegexMatcherBuilder::new()
        .fixed_strings(true)
        .word(true)
        .build(symbol)
        .map_err(|e| ToolError::invalid(e.to_string()))
}

fn line_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

struct Collect<'a> {
    path: String,
    hits: Vec<Hit>,
    before: Vec<String>,
    found: &'a AtomicUsize,
    limit: usize,
}

impl Sink for Collect<'_> {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, m: &SinkMatch<'_>) -> Result<bool, std::io::Error> {
        let line = m.line_number().unwrap_or(0);
        self.hits.push(Hit {
            path: self.path.clone(),
            line,
            text: line_text(m.bytes()),
            before: std::mem::take(&mut self.before),
            after: Vec::new(),
        });
        Ok(self.found.fetch_add(1, Ordering::Relaxed) < self.limit)
    }

    fn context(&mut self, _: &Searcher, c: &SinkContext<'_>) -> Result<bool, std::io::Error> {
        let text = line_text(c.bytes());
        match c.kind() {
            SinkContextKind::Before => self.before.push(text),
            SinkContextKind::After => {
                if let Some(hit) = self.hits.last_mut() {
                    hit.after.push(text);
                }
            }
            SinkContextKind::Other => {}
        }
        Ok(true)
    }
}
