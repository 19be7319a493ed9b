//! What each spec-kit command does with the paths its script answered: which document it
//! writes from which template, knowing what, and on which role.

use std::path::Path;

use super::author::{self, Author};
use super::files::Writable;
use super::implement::Implement;
use super::{analysis, document, script, tasklist, Report, Run, SpecError};
use crate::models::Role;
use crate::pipeline::Ask;
use crate::tools::read;
use crate::tools::speckit::ScriptCall;

/// Code files shown with a plan or a task list, and how much of each.
const CODE_FILES: usize = 4;
const CODE_BYTES: usize = 1500;
/// Tokens of the clarification questions.
const QUESTIONS_TOKENS: u32 = 600;

pub async fn carry_out(run: &Run<'_>) -> Result<Report, SpecError> {
    match run.command.name.as_str() {
        "specify" => specify(run).await,
        "clarify" => clarify(run).await,
        "plan" => {
            let dir = run.feature_dir()?;
            let output = run.path("IMPL_PLAN").unwrap_or_else(|| dir.join("plan.md"));
            // The script copies the template to the plan; a plan made before is rewritten.
            let template = match run.read(&output).filter(|t| t.contains("[FEATURE]")) {
                Some(copied) => copied,
                None => template(run, "plan-template").await?,
            };
            let known = format!("{}{}", feature_docs(run, &dir, &["spec.md"]), code(run, &dir).await);
            let writable = Writable::feature(&run.root, &dir)?;
            write_document(run, &writable, &output, &template, known).await
        }
        "tasks" => {
            let dir = run.feature_dir()?;
            let template = match run.paths.get("TASKS_TEMPLATE_CONTENT").and_then(|v| v.as_str()) {
                Some(text) => text.to_string(),
                None => template(run, "tasks-template").await?,
            };
            let known = format!("{}{}", feature_docs(run, &dir, &["spec.md", "plan.md"]), code(run, &dir).await);
            let tasks = tasklist::plan(run.models, run.writer, &known, run.progress).await?;
            let tasks = tasklist::repair(tasks, &workspace_files(&run.root));
            let title = title(run, &dir);
            let story = run.read(&dir.join("spec.md")).and_then(|s| first_story(&s)).unwrap_or_else(|| title.clone());
            let text = tasklist::render(&template, &fields(run, &title, &dir), &story, &tasks);
            let writable = Writable::feature(&run.root, &dir)?;
            let mut report = run.report();
            report.files.push(writable.write(&dir.join("tasks.md"), &text)?);
            report.problems = document::problems(&text, &template, limit(run));
            report.done = report.problems.is_empty();
            Ok(report)
        }
        "checklist" => {
            let dir = run.feature_dir()?;
            let template = content_or(run, "TEMPLATE_CONTENT", "checklist-template").await?;
            let name = slug(&run.arguments, 3).unwrap_or_else(|| "requirements".into());
            let known = feature_docs(run, &dir, &["spec.md", "plan.md"]);
            let writable = Writable::feature(&run.root, &dir)?;
            write_document(run, &writable, &dir.join(format!("checklists/{name}.md")), &template, known).await
        }
        "constitution" => {
            let template = content_or(run, "TEMPLATE_CONTENT", "constitution-template").await?;
            let output = run.root.join(".specify/memory/constitution.md");
            let known = format!("Principles asked for: {}\n", run.arguments);
            write_document(run, &Writable::memory(&run.root), &output, &template, known).await
        }
        "implement" => implement(run).await,
        _ => read_only(run).await,
    }
}

/// `specify`: a new feature directory under `specs/` (or the one an older template's
/// script made), its `spec.md` from the spec template, and `.specify/feature.json`.
async fn specify(run: &Run<'_>) -> Result<Report, SpecError> {
    if run.arguments.trim().is_empty() {
        return Err(SpecError::Document("no feature description: say what to build after /speckit.specify".into()));
    }
    let (title, short) = name_feature(run).await;
    let spec = match run.path("SPEC_FILE") {
        Some(spec) => spec,
        None => run.root.join("specs").join(format!("{}-{short}", next_prefix(&run.root))).join("spec.md"),
    };
    let dir = spec.parent().expect("a spec has a folder").to_path_buf();
    let writable = Writable::feature(&run.root, &dir)?.and(".specify/feature.json");
    let rel = dir.strip_prefix(&run.root).unwrap_or(&dir).display().to_string();
    let pointer = serde_json::json!({"feature_directory": rel});
    let mut report = run.report();
    report.files.push(writable.write(Path::new(".specify/feature.json"), &format!("{pointer:#}\n"))?);
    let template = template(run, "spec-template").await?;
    let known = format!("The feature, in the user's words: {}\n", run.arguments);
    let fields = fields(run, &title, &dir);
    let written = author(run, run.writer, known).write(&template, &fields, limit(run)).await?;
    report.files.push(writable.write(&spec, &written.text)?);
    report.done = written.problems.is_empty();
    report.problems = written.problems;
    Ok(report)
}

/// The feature's title and a short name for its directory, from the planner, else from
/// the words themselves.
async fn name_feature(run: &Run<'_>) -> (String, String) {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 60}, "short_name": {"type": "string", "maxLength": 40}},
        "required": ["title", "short_name"],
    });
    let ask = async {
        let grammar = crate::engine::json_schema_grammar(&schema.to_string()).ok()?;
        let user = format!(
            "A feature request:\n\n{}\n\nGive it a title of a few words and a short name of 2 to 4 lowercase words joined by hyphens (\"add-json-flag\"). Answer in JSON.",
            run.arguments
        );
        let ask = Ask::new("You name software features.", user, 80).grammar(grammar);
        let answer = run.models.ask(run.writer, ask).await.ok()?.into_iter().next()?;
        let json: serde_json::Value = serde_json::from_str(&answer.text).ok()?;
        let title = json["title"].as_str()?.trim().to_string();
        let short = slug(json["short_name"].as_str()?, 4)?;
        (!title.is_empty()).then_some((title, short))
    };
    match ask.await {
        Some(named) => named,
        None => {
            let short = slug(&run.arguments, 4).unwrap_or_else(|| "feature".into());
            (short.replace('-', " "), short)
        }
    }
}

/// The next `NNN` prefix under `specs/` (or a timestamp, where the project chose that).
fn next_prefix(root: &Path) -> String {
    let options = std::fs::read_to_string(root.join(".specify/init-options.json")).unwrap_or_default();
    let options: serde_json::Value = serde_json::from_str(&options).unwrap_or_default();
    let numbering = options["feature_numbering"].as_str().or(options["branch_numbering"].as_str());
    if numbering == Some("timestamp") {
        let (y, mo, d, h, mi, s) = crate::engine::now_utc();
        return format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}");
    }
    let used = std::fs::read_dir(root.join("specs"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_string_lossy().split('-').next().and_then(|n| n.parse::<u32>().ok()))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    format!("{:03}", used + 1)
}

/// `clarify`: up to five questions the spec leaves open, each answered with the most
/// reasonable choice (quorum runs without a person to ask; the answers are listed for
/// the user to change), recorded in a Clarifications section, and the spec's
/// `[NEEDS CLARIFICATION: ...]` markers replaced by the answers.
async fn clarify(run: &Run<'_>) -> Result<Report, SpecError> {
    let spec_path =
        run.path("FEATURE_SPEC").ok_or_else(|| SpecError::Document("no spec: run /speckit.specify first".into()))?;
    let spec =
        run.read(&spec_path).ok_or_else(|| SpecError::Document(format!("cannot read {}", spec_path.display())))?;
    let markers = markers(&spec);
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"questions": {"type": "array", "maxItems": 5, "items": {
            "type": "object",
            "properties": {"question": {"type": "string", "maxLength": 200}, "answer": {"type": "string", "maxLength": 200}},
            "required": ["question", "answer"]}}},
        "required": ["questions"],
    });
    let grammar =
        crate::engine::json_schema_grammar(&schema.to_string()).map_err(|e| SpecError::Model(e.to_string()))?;
    let open = markers.iter().enumerate().map(|(i, m)| format!("{}. {m}\n", i + 1)).collect::<String>();
    let user = format!(
        "{}\n\n## The spec\n\n{}\n\n## Open questions marked in it\n\n{}\n\nAsk at most 5 questions whose answers would change this spec the most, and answer each with the most reasonable choice. Answer the marked questions first, in order. Answer in JSON.",
        author::excerpt(&run.instructions),
        spec,
        if open.is_empty() { "none\n".to_string() } else { open }
    );
    run.progress.say("asking what the spec leaves open");
    let ask = Ask::new("You review software specifications.", user, QUESTIONS_TOKENS).grammar(grammar);
    let answer = run.models.ask(run.writer, ask).await.map_err(|e| SpecError::Model(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&answer.into_iter().next().map(|s| s.text).unwrap_or_default()).unwrap_or_default();
    let pairs: Vec<(String, String)> = json["questions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| Some((q["question"].as_str()?.trim().to_string(), q["answer"].as_str()?.trim().to_string())))
        .filter(|(q, a)| !q.is_empty() && !a.is_empty())
        .collect();
    let updated = clarified(&spec, &pairs);
    let writable = Writable::feature(&run.root, spec_path.parent().expect("a spec has a folder"))?;
    let mut report = run.report();
    report.files.push(writable.write(&spec_path, &updated)?);
    report.problems = document::problems(&updated, &template(run, "spec-template").await?, limit(run));
    report.done = report.problems.is_empty();
    report.answer = pairs.iter().map(|(q, a)| format!("- Q: {q} → A: {a}\n")).collect();
    Ok(report)
}

/// The spec's `[NEEDS CLARIFICATION: question]` questions, in order.
fn markers(spec: &str) -> Vec<String> {
    spec.split("[NEEDS CLARIFICATION")
        .skip(1)
        .filter_map(|rest| Some(rest.split_once(']')?.0.trim_start_matches(':').trim().to_string()))
        .collect()
}

/// The spec with its markers answered in order and the session's questions recorded.
fn clarified(spec: &str, pairs: &[(String, String)]) -> String {
    let mut text = spec.to_string();
    for (_, answer) in pairs.iter().take(markers(spec).len()) {
        let Some(start) = text.find("[NEEDS CLARIFICATION") else { break };
        let Some(end) = text[start..].find(']') else { break };
        text.replace_range(start..start + end + 1, answer);
    }
    if pairs.is_empty() {
        return text;
    }
    let (y, m, d, ..) = crate::engine::now_utc();
    let mut session = format!("### Session {y:04}-{m:02}-{d:02}\n\n");
    for (q, a) in pairs {
        session.push_str(&format!("- Q: {q} → A: {a}\n"));
    }
    if let Some(at) = text.find("## Clarifications") {
        let after = text[at..].find('\n').map(|i| at + i + 1).unwrap_or(text.len());
        text.insert_str(after, &format!("\n{session}"));
        return text;
    }
    let section = format!("## Clarifications\n\n{session}\n");
    match text.find("\n## Requirements") {
        Some(at) => text.insert_str(at + 1, &section),
        None => text.push_str(&format!("\n{section}")),
    }
    text
}

async fn implement(run: &Run<'_>) -> Result<Report, SpecError> {
    let dir = run.feature_dir()?;
    let tasks_file = dir.join("tasks.md");
    let title = title(run, &dir);
    let summary = run.read(&dir.join("plan.md")).map(|p| section_text(&p, "## Summary")).unwrap_or_default();
    let feature = format!(
        "It is one task of the feature \"{title}\" ({}); do this task only.\n{summary}",
        dir.strip_prefix(&run.root).unwrap_or(&dir).display()
    );
    let writable = Writable::feature(&run.root, &dir)?;
    let implement = Implement {
        pipeline: run.pipeline,
        tools: run.tools,
        tasks_file: &tasks_file,
        writable: &writable,
        feature,
        options: run.options.clone(),
        limit: run.task_limit,
        progress: run.progress,
    };
    let outcome = implement.run().await?;
    let mut report = run.report();
    if !outcome.ticked.is_empty() {
        report.files.push(tasks_file.strip_prefix(&run.root).unwrap_or(&tasks_file).display().to_string());
    }
    report.answer =
        format!("Done: {}.", if outcome.ticked.is_empty() { "none".into() } else { outcome.ticked.join(", ") });
    if let Some((id, reason)) = outcome.failed {
        report.done = false;
        report.problems.push(format!("{id} failed: {reason} ({} task(s) after it left unticked)", outcome.left));
    } else if outcome.left > 0 {
        report.answer.push_str(&format!(" {} task(s) left for the next run.", outcome.left));
    }
    Ok(report)
}

/// `analyze` and any command quorum has no document for: findings on the feature's
/// documents, and nothing written.
async fn read_only(run: &Run<'_>) -> Result<Report, SpecError> {
    let mut docs = Vec::new();
    if let Ok(dir) = run.feature_dir() {
        for (name, from) in [("spec.md", "spec-template"), ("plan.md", "plan-template"), ("tasks.md", "tasks-template")]
        {
            if let Some(text) = run.read(&dir.join(name)) {
                let template = template(run, from).await.ok();
                docs.push(analysis::Doc { name: name.into(), text, template });
            }
        }
    }
    let mut findings = analysis::checked(&docs, &workspace_files(&run.root));
    let known: String =
        docs.iter().map(|d| format!("### {}\n\n{}\n\n", d.name, document::strip_comments(&d.text))).collect();
    let role = if run.command.name == "analyze" { Role::Reviewer } else { run.writer };
    let task = format!("/speckit.{}: {}", run.command.name, run.command.description);
    findings.extend(analysis::asked(run.models, role, &task, &known, run.progress).await?);
    let mut report = run.report();
    report.answer = analysis::report(&findings);
    Ok(report)
}

/// Writes `output` from `template` by sections, and says what is still wrong.
async fn write_document(
    run: &Run<'_>,
    writable: &Writable,
    output: &Path,
    template: &str,
    known: String,
) -> Result<Report, SpecError> {
    let dir = output.parent().map(Path::to_path_buf).unwrap_or_default();
    let title = title(run, &dir);
    let known = match run.arguments.trim() {
        "" => known,
        asked => format!("The user asked: {asked}\n\n{known}"),
    };
    let written = author(run, run.writer, known).write(template, &fields(run, &title, &dir), limit(run)).await?;
    let mut report = run.report();
    report.files.push(writable.write(output, &written.text)?);
    report.done = written.problems.is_empty();
    report.problems = written.problems;
    Ok(report)
}

fn author<'a>(run: &'a Run<'_>, role: Role, known: String) -> Author<'a> {
    Author {
        models: run.models,
        role,
        command: &run.command.name,
        description: &run.command.description,
        known,
        progress: run.progress,
    }
}

fn limit(run: &Run<'_>) -> usize {
    document::clarification_limit(&run.instructions)
}

/// The fields quorum fills itself, wherever a template has them.
fn fields(run: &Run<'_>, title: &str, dir: &Path) -> Vec<(&'static str, String)> {
    let (y, m, d, ..) = crate::engine::now_utc();
    let today = format!("{y:04}-{m:02}-{d:02}");
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let project = run.root.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let kind = slug(&run.arguments, 3).unwrap_or_else(|| "requirements".into()).replace('-', " ");
    vec![
        ("[FEATURE NAME]", title.to_string()),
        ("[FEATURE]", title.to_string()),
        ("[###-feature-name]", dir_name.clone()),
        ("[###-feature]", dir_name),
        ("[DATE]", today.clone()),
        ("[RATIFICATION_DATE]", today.clone()),
        ("[LAST_AMENDED_DATE]", today),
        ("[CONSTITUTION_VERSION]", "1.0.0".into()),
        ("[PROJECT_NAME]", project),
        ("[CHECKLIST TYPE]", kind),
        ("[link]", "spec.md".into()),
        ("$ARGUMENTS", run.arguments.clone()),
    ]
}

/// The feature's title: its spec's heading after the colon, else its directory's name.
fn title(run: &Run<'_>, dir: &Path) -> String {
    let heading = run.read(&dir.join("spec.md")).and_then(|s| {
        let first = s.lines().find(|l| l.starts_with("# "))?.to_string();
        first.split_once(':').map(|(_, t)| t.trim().to_string()).filter(|t| !t.is_empty())
    });
    heading.unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
}

/// The active template by name: what spec-kit's resolver answers (presets and overrides
/// included), else the file under `.specify/templates/`.
async fn template(run: &Run<'_>, name: &str) -> Result<String, SpecError> {
    if let Some(text) = resolve(&run.root, name).await {
        return Ok(text);
    }
    let file = run.root.join(format!(".specify/templates/{name}.md"));
    std::fs::read_to_string(&file)
        .map_err(|e| SpecError::Document(format!("no {name} in the project ({}: {e})", file.display())))
}

/// A template the script sent as `key`, else the project's file of that name; the
/// resolver script is run where the command's own script did not send one.
async fn content_or(run: &Run<'_>, key: &str, name: &str) -> Result<String, SpecError> {
    if let Some(text) = run.paths.get(key).and_then(|v| v.as_str()) {
        return Ok(text.to_string());
    }
    template(run, name).await
}

/// The feature's documents that exist, each under its name.
fn feature_docs(run: &Run<'_>, dir: &Path, names: &[&str]) -> String {
    let mut out = String::new();
    for name in names {
        if let Some(text) = run.read(&dir.join(name)) {
            out.push_str(&format!("### {name}\n\n{}\n\n", document::strip_comments(&text)));
        }
    }
    if let Some(constitution) = run.read(&run.root.join(".specify/memory/constitution.md")) {
        if document::placeholders(&constitution).is_empty() {
            out.push_str(&format!("### The project's constitution\n\n{constitution}\n\n"));
        }
    }
    out
}

/// The code the feature's spec points at, found by the pipeline's retrieval.
async fn code(run: &Run<'_>, dir: &Path) -> String {
    let query = format!("{}\n{}", run.arguments, run.read(&dir.join("spec.md")).unwrap_or_default());
    let files = crate::pipeline::retrieve(run.tools, &query, &[]).await;
    let mut out = String::from("### The repository's files most related to it\n\n");
    for path in files.iter().filter(|p| !p.starts_with("specs/") && !p.starts_with(".specify/")).take(CODE_FILES) {
        let args = read::Args { path: path.clone(), max_bytes: Some(CODE_BYTES), ..Default::default() };
        if let Ok(found) = run.tools.read(args).await {
            out.push_str(&format!("{path}:\n```\n{}\n```\n\n", found.content.trim_end()));
        }
    }
    out
}

/// The text under a heading, up to the next heading of its level.
fn section_text(doc: &str, heading: &str) -> String {
    let Some(start) = doc.find(heading) else { return String::new() };
    let body = &doc[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    document::strip_comments(&body[..end])
}

/// The files git knows in the workspace (tracked, and untracked but not ignored).
fn workspace_files(root: &Path) -> Vec<String> {
    let listed = crate::git::run(root, &["ls-files", "--cached", "--others", "--exclude-standard"], None);
    listed.map(|text| text.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// The title of the spec's first user story ("### User Story 1 - TITLE (Priority: P1)").
fn first_story(spec: &str) -> Option<String> {
    let line = spec.lines().find(|l| l.starts_with("### User Story"))?;
    let title = line.split_once(" - ")?.1;
    Some(title.split(" (Priority").next().unwrap_or(title).trim().to_string()).filter(|t| !t.is_empty())
}

/// Up to `words` lowercase words of `text` joined by hyphens, without filler words.
fn slug(text: &str, words: usize) -> Option<String> {
    const FILLER: [&str; 12] = ["a", "an", "the", "to", "of", "for", "and", "i", "want", "we", "this", "in"];
    let picked: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !FILLER.contains(&w.as_str()))
        .take(words)
        .collect();
    (!picked.is_empty()).then(|| picked.join("-"))
}

/// Spec-kit's own resolver for a template, where the project has it.
async fn resolve(root: &Path, name: &str) -> Option<String> {
    let call = ScriptCall {
        path: ".specify/scripts/bash/resolve-template.sh".into(),
        args: vec![name.into(), "--json".into()],
    };
    let answer = script::run(root, &call, "").await.ok()?;
    answer.get("TEMPLATE_CONTENT").and_then(|v| v.as_str()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clarifications_answer_markers_and_are_recorded_before_requirements() {
        let spec = "# Spec\n\n## User Scenarios\n\nx\n\n## Requirements\n\n- FR-001: output as [NEEDS CLARIFICATION: which format?]\n";
        let pairs =
            vec![("Which format?".to_string(), "JSON".to_string()), ("Indent?".to_string(), "2 spaces".to_string())];
        let out = clarified(spec, &pairs);
        assert!(out.contains("- FR-001: output as JSON\n"), "{out}");
        assert!(out.contains("## Clarifications\n\n### Session "));
        assert!(out.contains("- Q: Indent? → A: 2 spaces"));
        assert!(out.find("## Clarifications").unwrap() < out.find("## Requirements").unwrap());
        assert_eq!(markers(spec), vec!["which format?"]);
    }

    #[test]
    fn the_first_story_names_the_phase() {
        let spec = "## User Scenarios\n\n### User Story 1 - JSON output (Priority: P1)\n\n### User Story 2 - Other (Priority: P2)\n";
        assert_eq!(first_story(spec).as_deref(), Some("JSON output"));
        assert_eq!(first_story("# nothing"), None);
    }

    #[test]
    fn slugs_keep_the_words_that_say_something() {
        assert_eq!(slug("I want to add a --json flag to the CLI", 4).as_deref(), Some("add-json-flag-cli"));
        assert_eq!(slug("!!", 3), None);
    }
}
