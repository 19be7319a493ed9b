//! `analyze`, and any command quorum writes nothing for: a findings table. quorum's own
//! checks come first (placeholders a document left, tasks naming files the repository
//! does not have), then the model's findings, asked as data so that a small model
//! cannot answer by copying its instructions out.

use super::document;
use super::{Progress, SpecError};
use crate::models::Role;
use crate::pipeline::{Ask, Models};

const MAX_FINDINGS: usize = 5;
const ANSWER_TOKENS: u32 = 600;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Finding {
    pub severity: String,
    pub location: String,
    pub summary: String,
}

/// A document, by name, and the template it was made from (if any).
pub struct Doc {
    pub name: String,
    pub text: String,
    pub template: Option<String>,
}

/// What quorum finds itself.
pub fn checked(docs: &[Doc], files: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    for doc in docs {
        if let Some(template) = &doc.template {
            for problem in document::problems(&doc.text, &document::unwrap_placeholders(template), usize::MAX) {
                out.push(Finding { severity: "CRITICAL".into(), location: doc.name.clone(), summary: problem });
            }
        }
    }
    let tasks = docs.iter().find(|d| d.name == "tasks.md").map(|d| d.text.as_str()).unwrap_or_default();
    for task in super::implement::parse(tasks).iter().filter(|t| !t.done) {
        let new = ["create", "new", "add a file"].iter().any(|w| task.description.to_lowercase().contains(w));
        let missing = task
            .description
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '`' || c == ',' || c == '.'))
            .filter(|w| {
                w.contains('/')
                    || w.rsplit_once('.')
                        .is_some_and(|(_, ext)| ["py", "rs", "js", "ts", "go", "md", "toml"].contains(&ext))
            })
            .find(|w| !files.iter().any(|f| f == w));
        if let (Some(path), false) = (missing, new) {
            let summary = format!("{} names {path}, which the repository does not have", task.id);
            out.push(Finding { severity: "MEDIUM".into(), location: "tasks.md".into(), summary });
        }
    }
    out
}

/// The model's findings on the documents.
pub async fn asked(
    models: &dyn Models,
    role: Role,
    task: &str,
    known: &str,
    progress: &Progress,
) -> Result<Vec<Finding>, SpecError> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": {
            "type": "object",
            "properties": {
                "severity": {"enum": ["CRITICAL", "HIGH", "MEDIUM", "LOW"]},
                "location": {"type": "string", "maxLength": 60},
                "summary": {"type": "string", "maxLength": 200},
            },
            "required": ["severity", "location", "summary"]}}},
        "required": ["findings"],
    });
    let grammar =
        crate::engine::json_schema_grammar(&schema.to_string()).map_err(|e| SpecError::Model(e.to_string()))?;
    let user = format!(
        "{known}\n\nThe task: {task}\n\nList at most {MAX_FINDINGS} findings: requirements no task covers, tasks no requirement asks for, contradictions, ambiguous or untestable statements. Name the document (and the requirement or task) each is in. Answer in JSON."
    );
    progress.say("reading the documents");
    let ask =
        Ask::new("You review software specifications, plans and task lists for consistency.", user, ANSWER_TOKENS)
            .grammar(grammar);
    let answer = models.ask(role, ask).await.map_err(|e| SpecError::Model(e.to_string()))?;
    #[derive(serde::Deserialize)]
    struct List {
        findings: Vec<Finding>,
    }
    let text = answer.into_iter().next().map(|s| s.text).unwrap_or_default();
    let list: List =
        serde_json::from_str(&text).map_err(|e| SpecError::Model(format!("the findings are not valid: {e}")))?;
    // A finding that repeats the task is the model reading its instructions back.
    Ok(list
        .findings
        .into_iter()
        .filter(|f| !f.summary.trim().is_empty() && !super::blanks::repeats(&f.summary, task))
        .collect())
}

/// The findings as spec-kit's analysis report shows them.
pub fn report(findings: &[Finding]) -> String {
    let mut out = String::from(
        "## Analysis Report\n\n| ID | Severity | Location | Summary |\n|----|----------|----------|---------|\n",
    );
    for (i, f) in findings.iter().enumerate() {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        out.push_str(&format!("| A{} | {} | {} | {} |\n", i + 1, f.severity, cell(&f.location), cell(&f.summary)));
    }
    let critical = findings.iter().filter(|f| f.severity == "CRITICAL").count();
    out.push_str(&format!("\n{} finding(s), {critical} critical. No file was changed.\n", findings.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_finds_unfilled_documents_and_missing_files() {
        let docs = vec![
            Doc { name: "plan.md".into(), text: "# Plan: [FEATURE]\n".into(), template: Some("# Plan: [FEATURE]\n".into()) },
            Doc {
                name: "tasks.md".into(),
                text: "- [ ] T001 Change src/cli/wordcount.py\n- [ ] T002 Create tests/test_json.py\n- [ ] T003 Edit wordcount.py\n".into(),
                template: None,
            },
        ];
        let found = checked(&docs, &["wordcount.py".to_string()]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].severity.as_str(), found[0].location.as_str()), ("CRITICAL", "plan.md"));
        assert!(found[1].summary.contains("T001 names src/cli/wordcount.py"));
        let table = report(&found);
        assert!(table.contains("| A2 | MEDIUM | tasks.md |") && table.contains("2 finding(s), 1 critical"));
    }
}
