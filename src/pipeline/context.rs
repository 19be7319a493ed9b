//! The code the models see: the context the plan gathers with the codebase tools (the
//! analyze_codebase summary, then the files the task names and the files that define or
//! use the symbols it names, most relevant first), and files fitted to a token budget
//! (counted with the planner's own tokenizer), cut at a line where they do not fit whole.

use std::collections::BTreeMap;

pub use super::record::{Context, ContextFile};
use super::{Ctx, PipelineError};
use crate::models::Role;
use crate::tools::{analyze, is_generated, read, references, Workspace};

/// Gathers the context: summary, then files by relevance within the token budget.
pub async fn gather(ctx: &Ctx<'_>, task: &str, extra_files: &[String]) -> Result<Context, PipelineError> {
    let args = analyze::Args { depth: Some(2), max_entries: Some(80), symbols: Some(false), ..Default::default() };
    let analysis = ctx.tools.analyze(args).await?;
    let languages: Vec<String> =
        analysis.languages.iter().take(5).map(|l| format!("{} ({} lines)", l.language, l.lines)).collect();
    let summary = format!(
        "Languages: {}\nEntry points: {}\nTests: {}\nFiles: {}",
        languages.join(", "),
        analysis.entry_points.join(", "),
        analysis.test_commands.join(", "),
        analysis.tree.join(", ")
    );

    let (paths, symbols) = super::heuristics::terms(task);
    let mut score: BTreeMap<String, u32> = BTreeMap::new();
    for path in paths.iter().chain(extra_files) {
        if let Ok(found) =
            ctx.tools.read(read::Args { path: path.clone(), max_bytes: Some(1), ..Default::default() }).await
        {
            *score.entry(found.path).or_default() += 10;
        }
    }
    for symbol in &symbols {
        let args = references::Args { symbol: symbol.clone(), max_results: Some(50), ..Default::default() };
        let Ok(found) = ctx.tools.references(args).await else { continue };
        for (locations, weight) in [(&found.definitions, 5), (&found.references, 1)] {
            for loc in locations {
                *score.entry(loc.path.clone()).or_default() += weight;
            }
        }
    }
    if score.is_empty() {
        // Nothing named: the entry points are the best guess.
        score.extend(analysis.entry_points.into_iter().map(|path| (path, 1)));
    }
    let mut ranked: Vec<(String, u32)> = score.into_iter().filter(|(path, _)| !is_generated(path)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let paths: Vec<String> = ranked.into_iter().map(|(path, _)| path).collect();
    let files = fit_files(ctx, ctx.tools.workspace(), &paths, ctx.options.context_tokens);
    Ok(Context { summary, files })
}

/// Reads `paths` from `tree` in order while `budget` tokens last; a file that does not
/// fit whole is cut at a line. Unreadable, binary and missing files are skipped.
pub fn fit_files(ctx: &Ctx<'_>, tree: &Workspace, paths: &[String], budget: usize) -> Vec<ContextFile> {
    let mut left = budget;
    let mut files = Vec::new();
    for path in paths {
        if left < 50 {
            break;
        }
        let Ok(full) = tree.resolve_content(path) else { continue };
        let Ok(content) = std::fs::read_to_string(&full) else { continue };
        if content.contains('\0') || files.iter().any(|f: &ContextFile| f.path == tree.relative(&full)) {
            continue;
        }
        let (content, tokens) = fit(ctx, &content, left);
        if tokens == 0 {
            continue;
        }
        left -= tokens;
        files.push(ContextFile { path: tree.relative(&full), content, tokens });
    }
    files
}

/// The line that ends a file cut to fit its budget.
const CUT: &str = "...";

/// Whether the file is shown whole, not cut to fit its budget.
pub fn is_whole(file: &ContextFile) -> bool {
    !file.content.lines().last().is_some_and(|l| l.starts_with(CUT) && l.ends_with("more lines not shown)"))
}

/// The longest prefix of whole lines of `content` within `budget` tokens.
fn fit(ctx: &Ctx<'_>, content: &str, budget: usize) -> (String, usize) {
    let count = |s: &str| ctx.models.count_tokens(Role::Planner, s);
    let whole = count(content);
    if whole <= budget {
        return (content.to_string(), whole);
    }
    let lines: Vec<&str> = content.lines().collect();
    let (mut lo, mut hi) = (0, lines.len());
    // Binary search on the number of lines: token counts grow with the prefix.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if count(&lines[..mid].join("\n")) + 10 <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        return (String::new(), 0);
    }
    let text = format!("{}\n{CUT} ({} more lines not shown)\n", lines[..lo].join("\n"), lines.len() - lo);
    let tokens = count(&text);
    (text, tokens)
}

pub fn render_files(files: &[ContextFile]) -> String {
    files.iter().map(|f| format!("FILE: {}\n```\n{}```\n", f.path, f.content)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::{is_whole, ContextFile, CUT};

    #[test]
    fn a_cut_file_is_not_whole() {
        let file = |content: &str| ContextFile { path: "a.py".into(), content: content.into(), tokens: 3 };
        assert!(is_whole(&file("x = 1\ny = 2\n")));
        assert!(!is_whole(&file(&format!("x = 1\n{CUT} (4 more lines not shown)\n"))));
    }
}
