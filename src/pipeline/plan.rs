//! Stage 2: gather codebase context with the tools, then ask the planner for a plan
//! constrained by a JSON schema (grammar-constrained decoding, not repair afterwards).
//!
//! Context: the analyze_codebase summary, then the files the task names and the files
//! that define or use the symbols it names, most relevant first, read while the budget
//! (counted with the planner's own tokenizer) lasts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::event::ContextEntry;
use super::{Ctx, Event, PipelineError};
use crate::models::Role;
use crate::state::Stage;
use crate::tools::Workspace;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subtask {
    pub description: String,
    #[serde(default)]
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub subtasks: Vec<Subtask>,
    #[serde(default)]
    pub verify: String,
}

impl Plan {
    /// Whether `subtask` is the plan's last step, after which its tests must pass.
    pub fn is_last(&self, subtask: usize) -> bool {
        subtask + 1 == self.subtasks.len()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
    pub tokens: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Context {
    pub summary: String,
    pub files: Vec<ContextFile>,
}

/// The plan stage's saved output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    pub plan: Plan,
    pub context: Context,
    /// The planner's answer did not parse; the task itself became the only sub-task.
    pub fallback: bool,
    /// Review rounds already spent when this plan was made (rounds count per plan).
    pub round_start: usize,
    pub replans: u32,
    /// Edge-case calls every candidate runs (none outside Python).
    #[serde(default)]
    pub probes: super::probes::Probes,
}

pub fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array", "minItems": 1, "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "maxLength": 300},
                        "files": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 120}}
                    },
                    "required": ["description", "files"]
                }
            },
            "verify": {"type": "string", "maxLength": 200}
        },
        "required": ["subtasks", "verify"]
    })
}

/// Words in the task that look like file paths or code identifiers.
fn terms(task: &str) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut symbols = Vec::new();
    for raw in task.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | '`' | ':')) {
        let word = raw.trim_matches(|c: char| matches!(c, '.' | '?' | '!' | '[' | ']' | '{' | '}'));
        if word.len() < 3 {
            continue;
        }
        let has_ext = word.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(char::is_alphanumeric)
        });
        if word.contains('/') || has_ext {
            paths.push(word.to_string());
            continue;
        }
        let ident = word.chars().all(|c| c.is_alphanumeric() || c == '_');
        let codey = word.contains('_')
            || (word.chars().skip(1).any(char::is_uppercase) && word.chars().any(char::is_lowercase));
        if ident && codey {
            symbols.push(word.to_string());
        }
    }
    paths.dedup();
    symbols.dedup();
    (paths, symbols)
}

/// Gathers the context: summary, then files by relevance within the token budget.
pub async fn gather(ctx: &Ctx<'_>, task: &str, extra_files: &[String]) -> Result<Context, PipelineError> {
    let analysis = ctx.tools.call("analyze_codebase", json!({"depth": 2, "max_entries": 80, "symbols": false})).await?;
    let languages: Vec<String> = analysis["languages"]
        .as_array()
        .map(|l| {
            l.iter()
                .take(5)
                .map(|x| format!("{} ({} lines)", x["language"].as_str().unwrap_or("?"), x["lines"]))
                .collect()
        })
        .unwrap_or_default();
    let list = |key: &str| {
        analysis[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let summary = format!(
        "Languages: {}\nEntry points: {}\nTests: {}\nFiles: {}",
        languages.join(", "),
        list("entry_points"),
        list("test_commands"),
        list("tree")
    );

    let (paths, symbols) = terms(task);
    let mut score: BTreeMap<String, u32> = BTreeMap::new();
    for path in paths.iter().chain(extra_files) {
        if let Ok(found) = ctx.tools.call("read_file", json!({"path": path, "max_bytes": 1})).await {
            *score.entry(found["path"].as_str().unwrap_or(path).to_string()).or_default() += 10;
        }
    }
    for symbol in &symbols {
        let Ok(found) = ctx.tools.call("find_references", json!({"symbol": symbol, "max_results": 50})).await else {
            continue;
        };
        for (key, weight) in [("definitions", 5), ("references", 1)] {
            for loc in found[key].as_array().into_iter().flatten() {
                if let Some(path) = loc["path"].as_str() {
                    *score.entry(path.to_string()).or_default() += weight;
                }
            }
        }
    }
    if score.is_empty() {
        // Nothing named: the entry points are the best guess.
        for path in analysis["entry_points"].as_array().into_iter().flatten().filter_map(|v| v.as_str()) {
            score.insert(path.to_string(), 1);
        }
    }
    let mut ranked: Vec<(String, u32)> = score.into_iter().collect();
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

/// Asks the planner; `learned` carries what earlier rounds found (for a re-plan).
pub async fn run(
    ctx: &Ctx<'_>,
    task: &str,
    learned: &[String],
    round_start: usize,
    replans: u32,
) -> Result<PlanOutput, PipelineError> {
    let context = gather(ctx, task, &[]).await?;
    let files = context.files.iter().map(|f| ContextEntry { path: f.path.clone(), tokens: f.tokens }).collect();
    ctx.emit(Stage::Plan, Event::Context { files, tokens: context.files.iter().map(|f| f.tokens).sum() }).await?;
    let mut user = format!("Task:\n{task}\n\nProject:\n{}\n\nCode:\n{}", context.summary, render_files(&context.files));
    if !learned.is_empty() {
        user.push_str(&format!("\nEarlier attempts were rejected for these reasons:\n- {}\n", learned.join("\n- ")));
    }
    let answer = ctx.ask_json(Role::Planner, &schema(), user, 400).await?;
    let parsed = serde_json::from_str::<Plan>(&answer)
        .ok()
        .map(|p| merge_same_files(without_test_steps(p, task)))
        .filter(|p| !p.subtasks.is_empty());
    let fallback = parsed.is_none();
    let plan = parsed.unwrap_or_else(|| Plan {
        subtasks: vec![Subtask {
            description: task.to_string(),
            files: context.files.iter().map(|f| f.path.clone()).collect(),
        }],
        verify: String::new(),
    });
    ctx.emit(Stage::Plan, Event::Plan { plan: plan.clone(), fallback }).await?;
    let probes = super::probes::generate(ctx, task, &plan, &context).await?;
    Ok(PlanOutput { plan, context, fallback, round_start, replans, probes })
}

/// Unless the task is about tests, steps that would only edit test files go (small
/// planners add "now add a test" steps the task never asked for), and the rest keep their
/// code files: the tests are what candidates are measured by.
fn without_test_steps(mut plan: Plan, task: &str) -> Plan {
    if super::about_tests(task) {
        return plan;
    }
    plan.subtasks.retain(|s| s.files.is_empty() || s.files.iter().any(|f| !crate::tools::is_test_file(f)));
    for step in &mut plan.subtasks {
        step.files.retain(|f| !crate::tools::is_test_file(f));
    }
    plan
}

/// Consecutive steps on the same files become one, their descriptions joined. Small
/// planners split one function's specification into a step per sentence; candidates for a
/// part of a function cannot pass its tests, so the test-informed vote would see nothing
/// but failures, and each part would be voted on alone.
fn merge_same_files(plan: Plan) -> Plan {
    let mut merged: Vec<Subtask> = Vec::new();
    for step in plan.subtasks {
        match merged.last_mut() {
            Some(last) if last.files == step.files => {
                if !last.description.contains(step.description.trim()) {
                    last.description = format!("{} {}", last.description.trim_end(), step.description.trim());
                }
            }
            _ => merged.push(step),
        }
    }
    Plan { subtasks: merged, ..plan }
}

#[cfg(test)]
mod tests {
    use super::{is_whole, merge_same_files, without_test_steps, ContextFile, Plan, Subtask, CUT};

    #[test]
    fn a_cut_file_is_not_whole() {
        let file = |content: &str| ContextFile { path: "a.py".into(), content: content.into(), tokens: 3 };
        assert!(is_whole(&file("x = 1\ny = 2\n")));
        assert!(!is_whole(&file(&format!("x = 1\n{CUT} (4 more lines not shown)\n"))));
    }

    #[test]
    fn consecutive_steps_on_the_same_files_merge() {
        let step = |d: &str, files: &[&str]| Subtask {
            description: d.into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        };
        let plan = Plan {
            subtasks: vec![
                step("Mask the middle.", &["a.py"]),
                step("Keep short strings.", &["a.py"]),
                step("Mask the middle.", &["a.py"]),
                step("Export it.", &["b.py"]),
                step("Use it.", &["a.py"]),
            ],
            verify: String::new(),
        };
        let merged = merge_same_files(plan).subtasks;
        assert_eq!(
            merged,
            vec![
                step("Mask the middle. Keep short strings.", &["a.py"]),
                step("Export it.", &["b.py"]),
                step("Use it.", &["a.py"])
            ]
        );
    }

    #[test]
    fn steps_on_tests_go_unless_the_task_is_about_tests() {
        let step = |d: &str, files: &[&str]| Subtask {
            description: d.into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        };
        let plan = Plan {
            subtasks: vec![
                step("implement f", &["solution.py", "test_solution.py"]),
                step("add a test case", &["test_solution.py"]),
            ],
            verify: "pytest".into(),
        };
        let kept = without_test_steps(plan.clone(), "Implement f in solution.py");
        assert_eq!(kept.subtasks, vec![step("implement f", &["solution.py"])]);
        assert_eq!(without_test_steps(plan.clone(), "Add tests for f").subtasks, plan.subtasks);
        assert_eq!(without_test_steps(plan.clone(), "Return the greatest value; see test_f").subtasks, plan.subtasks);
        assert_eq!(
            without_test_steps(plan, "Return the greatest and the latest value").subtasks.len(),
            1,
            "no word `test`"
        );
    }

    #[test]
    fn task_terms_are_paths_and_identifiers() {
        let (paths, symbols) =
            super::terms("Fix `parse_config()` in src/config.py so that MaxRetries is read; see README.md.");
        assert_eq!(paths, ["src/config.py", "README.md"]);
        assert_eq!(symbols, ["parse_config", "MaxRetries"]);
    }
}
