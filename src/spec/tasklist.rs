//! `tasks.md`: the task list asked of the model as data (each task a change to name
//! files, held to a schema) and written in the template's format. The template's phases
//! are examples (database schemas, authentication frameworks) that a small model keeps
//! as they are when asked to fill them in, and `implement` would then carry out; so
//! quorum keeps the template's header and format legend and writes the phase itself.

use super::document::{self, Section};
use super::{Progress, SpecError};
use crate::models::Role;
use crate::pipeline::{Ask, Models};

const MAX_TASKS: usize = 6;
const ANSWER_TOKENS: u32 = 700;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Planned {
    pub description: String,
    pub file: String,
    #[serde(default)]
    pub parallel: bool,
}

/// The feature's tasks, in order, from `role`.
pub async fn plan(
    models: &dyn Models,
    role: Role,
    known: &str,
    progress: &Progress,
) -> Result<Vec<Planned>, SpecError> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"tasks": {"type": "array", "minItems": 1, "maxItems": MAX_TASKS, "items": {
            "type": "object",
            "properties": {
                "description": {"type": "string", "maxLength": 200},
                "file": {"type": "string", "maxLength": 120},
                "parallel": {"type": "boolean"},
            },
            "required": ["description", "file", "parallel"]}}},
        "required": ["tasks"],
    });
    let grammar =
        crate::engine::json_schema_grammar(&schema.to_string()).map_err(|e| SpecError::Model(e.to_string()))?;
    let user = format!(
        "{known}\n\nBreak this feature into 1 to {MAX_TASKS} small tasks, in the order to do them. Each task is one change a developer makes to this repository: say what to change and in which file (a real path of the repository, or a new file). A task that changes tests comes after the change it tests. `parallel` is true only where the task changes a file no other task changes and needs no earlier task. Answer in JSON."
    );
    progress.say("listing the tasks");
    let ask = Ask::new("You plan software changes as small, ordered tasks.", user, ANSWER_TOKENS).grammar(grammar);
    let answer = models.ask(role, ask).await.map_err(|e| SpecError::Model(e.to_string()))?;
    let text = answer.into_iter().next().map(|s| s.text).unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct List {
        tasks: Vec<Planned>,
    }
    let list: List =
        serde_json::from_str(&text).map_err(|e| SpecError::Model(format!("the task list is not valid: {e}")))?;
    Ok(list.tasks.into_iter().filter(|t| !t.description.trim().is_empty()).collect())
}

/// The tasks with their files made real: a path that does not exist but whose name one
/// file of the workspace has becomes that file's path (a plan's example layout misleads
/// small models: `src/cli/wordcount.py` for `wordcount.py`), and `[P]` kept only where no
/// other task changes the same file.
pub fn repair(tasks: Vec<Planned>, files: &[String]) -> Vec<Planned> {
    let mut tasks: Vec<Planned> = tasks
        .into_iter()
        .map(|mut task| {
            let file = task.file.trim().trim_start_matches("./").to_string();
            if !file.is_empty() && !files.contains(&file) {
                let name = file.rsplit('/').next().unwrap_or(&file);
                let same: Vec<&String> = files.iter().filter(|f| f.rsplit('/').next() == Some(name)).collect();
                if let [only] = same.as_slice() {
                    task.description = task.description.replace(&file, only);
                    task.file = only.to_string();
                }
            }
            task
        })
        .collect();
    let shared: Vec<bool> =
        tasks.iter().map(|t| tasks.iter().filter(|o| o.file.trim() == t.file.trim()).count() > 1).collect();
    for (task, shared) in tasks.iter_mut().zip(shared) {
        task.parallel &= !shared;
    }
    tasks
}

/// `tasks.md` in the template's format: its header and legend, then the tasks as the
/// first user story's phase.
pub fn render(template: &str, fields: &[(&str, String)], story: &str, tasks: &[Planned]) -> String {
    let filled = document::fill(template, fields);
    let sections = document::sections(&filled);
    let kept = |s: &&Section| s.heading.is_empty() || s.heading.starts_with("## Format");
    let mut out: String = sections.iter().filter(kept).map(|s| document::strip_comments(&s.text) + "\n").collect();
    out.push_str(&format!("## Phase 1: User Story 1 - {story} (Priority: P1) 🎯 MVP\n\n"));
    for (i, task) in tasks.iter().enumerate() {
        let parallel = if task.parallel { "[P] " } else { "" };
        let description = task.description.trim().trim_end_matches('.');
        let file = task.file.trim();
        let place = if file.is_empty() || description.contains(file) { String::new() } else { format!(" in {file}") };
        out.push_str(&format!("- [ ] T{:03} {parallel}[US1] {description}{place}\n", i + 1));
    }
    out.push_str(
        "\n## Dependencies & Execution Order\n\nThe tasks run in the order listed; those marked [P] change files no other task changes and may run together.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_paths_become_the_workspaces_and_shared_files_run_alone() {
        let task =
            |file: &str, parallel| Planned { description: format!("Change {file}"), file: file.into(), parallel };
        let files = vec![
            "wordcount.py".to_string(),
            "tests/test_wordcount.py".to_string(),
            "a/util.py".into(),
            "b/util.py".into(),
        ];
        let tasks = vec![
            task("src/cli/wordcount.py", true),
            task("wordcount.py", true),
            task("util.py", true),
            task("new.py", true),
        ];
        let fixed = repair(tasks, &files);
        assert_eq!(fixed[0].file, "wordcount.py");
        assert_eq!(fixed[0].description, "Change wordcount.py");
        assert!(!fixed[0].parallel && !fixed[1].parallel);
        assert_eq!(fixed[2].file, "util.py", "two files of that name: left as it was");
        assert!(fixed[3].parallel);
    }

    #[test]
    fn tasks_are_written_in_the_templates_format() {
        let template = "---\ndescription: \"Task list\"\n---\n\n# Tasks: [FEATURE NAME]\n\n<!-- note -->\n\n## Format: `[ID] [P?] [Story] Description`\n\n- **[P]**: parallel\n\n## Phase 1: Setup\n\n- [ ] T001 Setup database schema\n";
        let tasks = vec![
            Planned { description: "Add a --json flag to main()".into(), file: "wordcount.py".into(), parallel: false },
            Planned {
                description: "Test the flag in tests/test_wordcount.py".into(),
                file: "tests/test_wordcount.py".into(),
                parallel: true,
            },
        ];
        let fields = [("[FEATURE NAME]", "JSON output".to_string())];
        let text = render(template, &fields, "JSON output", &tasks);
        assert!(
            text.starts_with(
                "# Tasks: JSON output\n\n## Format: `[ID] [P?] [Story] Description`\n\n- **[P]**: parallel\n"
            ),
            "{text}"
        );
        assert!(text.contains("- [ ] T001 [US1] Add a --json flag to main() in wordcount.py\n"));
        assert!(text.contains("- [ ] T002 [P] [US1] Test the flag in tests/test_wordcount.py\n"));
        assert!(!text.contains("database"));
        assert_eq!(super::super::implement::parse(&text).len(), 2);
    }
}
