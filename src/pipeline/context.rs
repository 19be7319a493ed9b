//! The code the models see: the context the plan gathers with the codebase tools (the
//! analyze_codebase summary, then the files the task names and the files that define or
//! use the symbols it names, most relevant first), and files fitted to a token budget
//! (counted with the planner's own tokenizer), cut to the blocks the task names where they
//! do not fit whole ([`excerpt`]).

use std::collections::{BTreeMap, BTreeSet};

pub use super::excerpt::Focus;
pub use super::record::{Context, ContextFile};
use super::{excerpt, heuristics, Ctx, PipelineError};
use crate::models::Role;
use crate::tools::{analyze, is_generated, read, references, search, Tools, Workspace};

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

    let mut paths = retrieve(ctx.tools, task, extra_files).await;
    if paths.is_empty() && !heuristics::asks_for_new_file(task) {
        // Nothing named: the entry points are the best guess (not for a new file, which
        // would draw the plan into them).
        paths = analysis.entry_points.into_iter().filter(|p| !is_generated(p)).collect();
    }
    let files = fit_files(ctx, ctx.tools.workspace(), &paths, ctx.options.context_tokens, &task_focus(task));
    Ok(Context { summary, files })
}

/// The workspace's files ranked by what the task's words name ([`heuristics::terms`]):
/// files it names (and `extra_files`) first, then files that define a symbol it names,
/// then files that use one (tests among them, which show what the code must do), then
/// files that define one of its plain words. Generated and vendored files never rank.
pub async fn retrieve(tools: &Tools, task: &str, extra_files: &[String]) -> Vec<String> {
    let terms = heuristics::terms(task);
    let mut score: BTreeMap<String, u32> = BTreeMap::new();
    for path in terms.paths.iter().chain(extra_files) {
        if let Ok(found) = tools.read(read::Args { path: path.clone(), max_bytes: Some(1), ..Default::default() }).await
        {
            *score.entry(found.path).or_default() += 20;
        }
    }
    // A qualifier (`pkg` of `pkg.func`) counts where it is defined (a class), not where
    // it is used: every import of the package would.
    let weighted = terms
        .symbols
        .iter()
        .map(|s| (s, 5, 1))
        .chain(terms.qualifiers.iter().map(|q| (q, 5, 0)))
        .chain(terms.words.iter().take(MAX_WORDS).map(|w| (w, 2, 0)));
    for (symbol, defines, uses) in weighted {
        let args = references::Args { symbol: symbol.clone(), max_results: Some(500), ..Default::default() };
        let Ok(found) = tools.references(args).await else { continue };
        // A file counts once per symbol, however often it says the name (a changelog says
        // it often), and a use counts only in code.
        let defining: BTreeSet<&String> = found.definitions.iter().map(|l| &l.path).collect();
        let using: BTreeSet<&String> =
            found.references.iter().map(|l| &l.path).filter(|p| !defining.contains(p) && is_code(p)).collect();
        for (paths, weight) in [(defining, defines), (using, uses)] {
            for path in paths {
                *score.entry(path.clone()).or_default() += weight;
            }
        }
    }
    for phrase in &terms.phrases {
        let args = search::Args {
            query: phrase.clone(),
            case_sensitive: Some(true),
            max_results: Some(50),
            ..Default::default()
        };
        let Ok(found) = tools.search(args).await else { continue };
        let printing: BTreeSet<&String> = found.matches.iter().map(|m| &m.path).filter(|p| is_code(p)).collect();
        for path in printing {
            *score.entry(path.clone()).or_default() += 5;
        }
    }
    let mut ranked: Vec<(String, u32)> = score.into_iter().filter(|(p, s)| *s > 0 && !is_generated(p)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().map(|(path, _)| path).collect()
}

/// Whether a file is source code, by its extension (not documentation, data or a changelog).
fn is_code(path: &str) -> bool {
    const CODE: &[&str] = &[
        "py", "pyi", "rs", "go", "js", "jsx", "mjs", "ts", "tsx", "c", "h", "cc", "cpp", "hpp", "java", "kt", "rb",
        "php", "cs", "swift", "scala", "lua", "sh",
    ];
    path.rsplit_once('.').is_some_and(|(_, ext)| CODE.contains(&ext))
}

/// Plain words of a task looked up as definitions, at most.
const MAX_WORDS: usize = 12;

/// What a task names: code names, plain words and quoted messages. A dotted name's
/// qualifier is not among them: `inflection` of `inflection.ordinalize` is in every
/// block of a file that loops `for inflection in ...`.
pub fn task_focus(task: &str) -> Focus {
    let terms = heuristics::terms(task);
    Focus { names: terms.symbols.into_iter().chain(terms.phrases).collect(), words: terms.words, lines: Vec::new() }
}

/// What a task names, and the lines `diff` adds: the blocks a reviewer must see.
pub fn change_focus(task: &str, diff: &str) -> Focus {
    let lines = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .map(|l| l[1..].trim().to_string())
        .filter(|l| l.len() >= 8)
        .collect();
    Focus { lines, ..task_focus(task) }
}

/// Reads `paths` from `tree` in order while `budget` tokens last; a file that does not
/// fit whole is cut to what `focus` names ([`excerpt::fit`]). Unreadable, binary and
/// missing files are skipped.
pub fn fit_files(ctx: &Ctx<'_>, tree: &Workspace, paths: &[String], budget: usize, focus: &Focus) -> Vec<ContextFile> {
    let count = |s: &str| ctx.models.count_tokens(Role::Planner, s);
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
        // One long file may not take the whole budget while others wait: the next ones
        // (often the small module that defines what the task names) get a share.
        let share = if files.is_empty() && paths.len() > 1 { left * 3 / 5 } else { left };
        let Some((content, tokens)) = excerpt::fit(&content, share, focus, &count) else { continue };
        // A cut file may come out a few tokens over (its last line): never below zero.
        left = left.saturating_sub(tokens);
        files.push(ContextFile { path: tree.relative(&full), content, tokens });
    }
    files
}

/// Whether the file is shown whole, not cut to fit its budget.
pub fn is_whole(file: &ContextFile) -> bool {
    !excerpt::is_cut(&file.content)
}

pub fn render_files(files: &[ContextFile]) -> String {
    files.iter().map(|f| format!("FILE: {}\n```\n{}```\n", f.path, f.content)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::{is_whole, retrieve, ContextFile};
    use crate::pipeline::excerpt::CUT;
    use crate::tools::{Tools, Workspace};

    #[tokio::test]
    async fn the_code_that_defines_what_the_task_names_ranks_above_a_changelog_that_repeats_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| std::fs::write(dir.path().join(path), text).unwrap();
        write("CHANGES", &"- six.add_metaclass now keeps __slots__\n".repeat(40));
        write("six.py", "def add_metaclass(metaclass):\n    slots = '__slots__'\n");
        write("test_six.py", "import six\n\ndef test_add_metaclass():\n    six.add_metaclass(type)\n");
        write("other.py", "def windowed(seq, n):\n    pass\n");
        write("six.egg-info", "add_metaclass\n");
        let tools = Tools::new(Workspace::new(dir.path()).unwrap());
        let ranked = retrieve(&tools, "six.add_metaclass breaks classes whose __slots__ is a string", &[]).await;
        assert_eq!(ranked.first().map(String::as_str), Some("six.py"), "{ranked:?}");
        assert!(ranked.contains(&"test_six.py".to_string()), "the tests that use it: {ranked:?}");
        assert!(!ranked.contains(&"CHANGES".to_string()), "{ranked:?}");
        // A plain word counts when something defines it.
        let ranked = retrieve(&tools, "windowed skips items", &[]).await;
        assert_eq!(ranked, ["other.py"]);
    }

    #[test]
    fn a_cut_file_is_not_whole() {
        let file = |content: &str| ContextFile { path: "a.py".into(), content: content.into(), tokens: 3 };
        assert!(is_whole(&file("x = 1\ny = 2\n")));
        assert!(!is_whole(&file(&format!("x = 1\n{CUT} (4 more lines not shown)\n"))));
    }
}
