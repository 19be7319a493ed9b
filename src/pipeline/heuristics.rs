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

/// The task asks for a file that does not exist yet ("a new file", "create util.py").
pub fn asks_for_new_file(task: &str) -> bool {
    let lower = task.to_lowercase();
    ["new file", "new module", "create a file", "create the file", "create a module"].iter().any(|p| lower.contains(p))
        || lower.split_whitespace().any(|w| w == "create" || w == "creates")
}

/// The task is about tests (adds, fixes or changes them); otherwise the tests are the
/// yardstick: plans drop steps on them and candidates cannot edit them (item 3).
pub fn about_tests(task: &str) -> bool {
    task.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| matches!(word, "test" | "tests" | "testing" | "pytest" | "unittest"))
}

/// What a task's words may name in the code: the context gathers the files they name
/// and the files that define or use them.
#[derive(Debug, Default, PartialEq)]
pub struct Terms {
    /// Words that look like file paths.
    pub paths: Vec<String>,
    /// Words that look like code: snake_case or camelCase, a call (`name(`), in backticks,
    /// or a part of a dotted name (`pkg.func`).
    pub symbols: Vec<String>,
    /// Other words of four letters or more that are not common English: only a definition
    /// of one of these counts (users name functions in plain words: "windowed", "camelize").
    pub words: Vec<String>,
    /// Quoted text that may be a message the code prints (`'Invalid value for x: 2'`): its
    /// longest run of plain words, which a format string keeps literally.
    pub phrases: Vec<String>,
}

pub fn terms(task: &str) -> Terms {
    let mut found = Terms::default();
    let separators = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'' | ':' | '=');
    let mut rest = task;
    while let Some(start) = rest.find(|c: char| !separators(c)) {
        let tail = &rest[start..];
        let len = tail.find(separators).unwrap_or(tail.len());
        let (raw, after) = (&tail[..len], &tail[len..]);
        rest = after;
        let quoted = raw.starts_with('`') || raw.ends_with('`');
        let word = raw.trim_matches(|c: char| matches!(c, '.' | '?' | '!' | '[' | ']' | '{' | '}' | '`'));
        if word.len() < 3 {
            continue;
        }
        let has_ext = word.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty() && (1..=5).contains(&ext.len()) && ext.chars().all(char::is_alphanumeric)
        });
        // `pkg.func` is code, `pkg.py` a file: a dotted name is a path only with a known extension.
        let dotted_code = word.split('.').count() > 1 && word.split('.').all(is_identifier);
        let known_ext = word.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.contains(&ext.to_lowercase().as_str()));
        if word.contains('/') || known_ext || (has_ext && !dotted_code) {
            found.paths.push(word.to_string());
            continue;
        }
        let called = after.starts_with('(');
        for part in word.split('.').filter(|p| is_identifier(p) && p.len() >= 3) {
            let codey = part.contains('_')
                || (part.chars().skip(1).any(char::is_uppercase) && part.chars().any(char::is_lowercase));
            if codey || called || quoted || dotted_code {
                found.symbols.push(part.to_string());
            } else if part.len() >= 4 && !COMMON.contains(&part.to_lowercase().as_str()) {
                found.words.push(part.to_string());
            }
        }
    }
    for list in [&mut found.paths, &mut found.symbols, &mut found.words] {
        let mut seen = std::collections::HashSet::new();
        list.retain(|w| seen.insert(w.clone()));
    }
    found.words.retain(|w| !found.symbols.contains(w));
    found.phrases = phrases(task);
    found
}

/// What a rewrite of the request must keep: the paths, code names and quoted messages it
/// names, and its numbers. The preprocessor's rewrite is used only when it keeps them all.
pub fn concrete_details(text: &str) -> Vec<String> {
    let found = terms(text);
    let numbers = text.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()).map(str::to_string);
    let mut details: Vec<String> =
        found.paths.into_iter().chain(found.symbols).chain(found.phrases).chain(numbers).collect();
    let mut seen = std::collections::HashSet::new();
    details.retain(|d| seen.insert(d.clone()));
    details
}

/// The longest run of at least three plain words inside each quoted span of `task`.
fn phrases(task: &str) -> Vec<String> {
    let mut found = Vec::new();
    for quote in ['\'', '"'] {
        let parts: Vec<&str> = task.split(quote).collect();
        for inside in parts.iter().skip(1).step_by(2).take(8) {
            let runs = inside.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ' '));
            let Some(best) = runs.map(str::trim).max_by_key(|r| r.len()) else { continue };
            if best.split_whitespace().count() >= 3 && best.len() <= 120 && !found.contains(&best.to_string()) {
                found.push(best.to_string());
            }
        }
    }
    found
}

fn is_identifier(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_') && !word.starts_with(char::is_numeric)
}

/// Extensions that make a dotted word a file name.
const EXTENSIONS: &[&str] = &[
    "c", "cc", "cfg", "cpp", "css", "go", "h", "hpp", "html", "ini", "java", "js", "json", "jsx", "lock", "md", "pyi",
    "py", "rs", "rst", "sh", "toml", "ts", "tsx", "txt", "yaml", "yml",
];

/// English words common in bug reports that name no code (a definition named so is noise).
const COMMON: &[&str] = &[
    "about",
    "after",
    "again",
    "also",
    "always",
    "another",
    "anything",
    "argument",
    "arguments",
    "back",
    "because",
    "been",
    "before",
    "behaves",
    "being",
    "both",
    "broken",
    "call",
    "called",
    "calls",
    "cannot",
    "case",
    "change",
    "code",
    "comes",
    "could",
    "default",
    "does",
    "doing",
    "done",
    "each",
    "either",
    "else",
    "empty",
    "error",
    "even",
    "every",
    "example",
    "exactly",
    "expected",
    "fail",
    "fails",
    "false",
    "file",
    "files",
    "first",
    "fine",
    "from",
    "function",
    "gets",
    "give",
    "given",
    "gives",
    "have",
    "instead",
    "into",
    "just",
    "keep",
    "keeps",
    "kind",
    "last",
    "like",
    "line",
    "lines",
    "long",
    "longer",
    "make",
    "makes",
    "many",
    "method",
    "more",
    "most",
    "much",
    "must",
    "name",
    "names",
    "need",
    "needs",
    "never",
    "none",
    "nothing",
    "number",
    "numbers",
    "once",
    "only",
    "other",
    "otherwise",
    "over",
    "parameter",
    "pass",
    "passes",
    "raise",
    "raises",
    "rather",
    "result",
    "return",
    "returns",
    "same",
    "says",
    "should",
    "show",
    "shows",
    "since",
    "some",
    "something",
    "still",
    "such",
    "sure",
    "take",
    "takes",
    "than",
    "that",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "this",
    "those",
    "though",
    "through",
    "today",
    "true",
    "turn",
    "turns",
    "under",
    "until",
    "used",
    "uses",
    "using",
    "value",
    "values",
    "very",
    "want",
    "wants",
    "well",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "whose",
    "will",
    "with",
    "without",
    "work",
    "works",
    "would",
    "wrong",
    "yields",
    "your",
];

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
        Subtask {
            description: description.into(),
            files: files.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
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
        let found = terms("Fix `parse_config()` in src/config.py so that MaxRetries is read; see README.md.");
        assert_eq!(found.paths, ["src/config.py", "README.md"]);
        assert_eq!(found.symbols, ["parse_config", "MaxRetries"]);
    }

    #[test]
    fn dotted_names_calls_and_plain_words_are_terms() {
        let found = terms(
            "inflection.ordinalize(11) gives '11st'; sqlparse.format(sql, keyword_case='capitalize') raises. \
             The `key` of topk(2, x) and windowed items should work; click.style too.",
        );
        assert!(found.paths.is_empty(), "{:?}", found.paths);
        for symbol in ["inflection", "ordinalize", "sqlparse", "format", "keyword_case", "key", "topk", "style"] {
            assert!(found.symbols.iter().any(|s| s == symbol), "{symbol} in {:?}", found.symbols);
        }
        assert!(found.words.iter().any(|w| w == "windowed"), "{:?}", found.words);
        assert!(!found.words.iter().any(|w| w == "should" || w == "gives"), "{:?}", found.words);
        let found = terms("format(x, n=2) raises SQLParseError 'Invalid value for truncate_strings: 2'.");
        assert_eq!(found.phrases, ["Invalid value for truncate_strings"]);
    }
}
