//! Every rule that reads the task's words or works around a model's habits, in one
//! place: each says what it is for, and where an evaluation justified it (`evals/RESULTS.md`,
//! "What moved the numbers", by item). The answer formats' salvage of cut-off answers
//! (`answer::blocks::before_repetition`, `answer::whole_files::before_repetition`) is the
//! other habit rule; it lives with its format (item 4).

use crate::pipeline::record::{Plan, Subtask};

// ---- The task's words

/// Chat front-ends' own requests (titles, tags, follow-ups) get one model's answer, not
/// a pipeline run: Open WebUI sends them after every chat (found trying it, not an eval).
pub fn is_auxiliary_request(text: &str) -> bool {
    let t = text.to_lowercase();
    let open_webui = t.trim_start().starts_with("### task:");
    let title = t.contains("title")
        && (t.contains("3-5 word") || t.contains("3-4 word") || t.contains("short title") || t.contains("concise"));
    let tags = t.contains("tags") && (t.contains("categoriz") || t.contains("broad tags"));
    let follow_ups = t.contains("follow-up questions") || t.contains("follow up questions");
    open_webui || title || tags || follow_ups
}

/// The task is about tests (adds, fixes or changes them); otherwise the tests are the
/// yardstick: plans drop steps on them and candidates cannot edit them (item 3).
pub fn about_tests(task: &str) -> bool {
    task.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| matches!(word, "test" | "tests" | "testing" | "pytest" | "unittest"))
}

/// Words that look like file paths or code identifiers: the context gathers the files
/// they name and the files that define or use them.
pub fn terms(task: &str) -> (Vec<String>, Vec<String>) {
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

/// The paths a candidate may edit: tests stay out of reach unless the task is about them
/// (item 3).
pub fn editable(task: &str, paths: &[String]) -> Vec<String> {
    if about_tests(task) {
        return paths.to_vec();
    }
    let code: Vec<String> = paths.iter().filter(|p| !crate::tools::is_test_file(p)).cloned().collect();
    if code.is_empty() {
        paths.to_vec()
    } else {
        code
    }
}

/// Whether the task asks for work in place: then a call that changes its arguments is no
/// fault (item 9).
pub fn asks_in_place(task: &str) -> bool {
    let lower = task.to_lowercase();
    ["in place", "in-place", "inplace"].iter().any(|w| lower.contains(w))
}

/// Whether the task names an exception (`pop raises IndexError when empty`): then raising
/// it is no crash (item 9).
pub fn names_exception(task: &str, exception: &str) -> bool {
    task.contains(exception)
}

// ---- The models' habits

/// Item 3: unless the task is about tests, steps that would only edit test files go (small
/// planners add "now add a test" steps the task never asked for), and the rest keep their
/// code files: the tests are what candidates are measured by.
pub fn without_test_steps(mut plan: Plan, task: &str) -> Plan {
    if about_tests(task) {
        return plan;
    }
    plan.subtasks.retain(|s| s.files.is_empty() || s.files.iter().any(|f| !crate::tools::is_test_file(f)));
    for step in &mut plan.subtasks {
        step.files.retain(|f| !crate::tools::is_test_file(f));
    }
    plan
}

/// Item 4: consecutive steps on the same files become one, their descriptions joined. Small
/// planners split one function's specification into a step per sentence; candidates for a
/// part of a function cannot pass its tests, so the test-informed vote would see nothing
/// but failures, and each part would be voted on alone.
pub fn merge_same_files(plan: Plan) -> Plan {
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
    use super::*;

    fn step(description: &str, files: &[&str]) -> Subtask {
        Subtask { description: description.into(), files: files.iter().map(|f| f.to_string()).collect() }
    }

    #[test]
    fn front_end_housekeeping_is_recognized() {
        assert!(is_auxiliary_request(
            "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history."
        ));
        assert!(is_auxiliary_request(
            "### Task:\nGenerate 1-3 broad tags categorizing the main themes of the chat history"
        ));
        assert!(is_auxiliary_request("Suggest 3-5 relevant follow-up questions the user might ask"));
        assert!(is_auxiliary_request("Given the following conversation, reply with a short title for it."));
        assert!(!is_auxiliary_request("Fix the off-by-one error in paginate() in src/pages.py"));
        assert!(!is_auxiliary_request("Add a --title flag to the CLI"));
    }

    #[test]
    fn consecutive_steps_on_the_same_files_merge() {
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
            terms("Fix `parse_config()` in src/config.py so that MaxRetries is read; see README.md.");
        assert_eq!(paths, ["src/config.py", "README.md"]);
        assert_eq!(symbols, ["parse_config", "MaxRetries"]);
    }
}
