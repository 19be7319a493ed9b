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
    /// or the last part of a dotted name (`func` of `pkg.func`).
    pub symbols: Vec<String>,
    /// The other parts of dotted names (`pkg`): a module or a class, which much code
    /// names without being about the task (a loop variable, an import).
    pub qualifiers: Vec<String>,
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
        let parts: Vec<&str> = word.split('.').collect();
        if dotted_code {
            let (_, qualifiers) = parts.split_last().expect("a dotted name has parts");
            found.qualifiers.extend(qualifiers.iter().filter(|q| q.len() >= 3).map(|q| q.to_string()));
        }
        let named = if dotted_code { &parts[parts.len() - 1..] } else { &parts[..] };
        for part in named.iter().copied().filter(|p| is_identifier(p) && p.len() >= 3) {
            let codey = part.contains('_')
                || (part.chars().skip(1).any(char::is_uppercase) && part.chars().any(char::is_lowercase));
            if codey || called || quoted || dotted_code {
                found.symbols.push(part.to_string());
            } else if part.len() >= 4 && !COMMON.contains(&part.to_lowercase().as_str()) {
                found.words.push(part.to_string());
            }
        }
    }
    for list in [&mut found.paths, &mut found.symbols, &mut found.qualifiers, &mut found.words] {
        let mut seen = std::collections::HashSet::new();
        list.retain(|w| seen.insert(w.clone()));
    }
    found.qualifiers.retain(|q| !found.symbols.contains(q));
    found.words.retain(|w| !found.symbols.contains(w) && !found.qualifiers.contains(w));
    found.phrases = phrases(task);
    found
}

/// What a rewrite of the request must keep: the paths, code names and quoted messages it
/// names, and its numbers. The preprocessor's rewrite is used only when it keeps them all.
pub fn concrete_details(text: &str) -> Vec<String> {
    let found = terms(text);
    let numbers = text.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()).map(str::to_string);
    let mut details: Vec<String> = found
        .paths
        .into_iter()
        .chain(found.symbols)
        .chain(found.qualifiers)
        .chain(found.phrases)
        .chain(numbers)
        .collect();
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
/// (item 3), and type stubs unless it changes an interface (a stub says what a function
/// takes and gives, not what it does: a small coder asked to fix a bug rewrites the stub
/// it may edit). Where that leaves nothing, all of them.
pub fn editable(task: &str, paths: &[String]) -> Vec<String> {
    let kept: Vec<String> = paths
        .iter()
        .filter(|p| about_tests(task) || !crate::tools::is_test_file(p))
        .filter(|p| changes_interface(task) || !p.ends_with(".pyi"))
        .cloned()
        .collect();
    if kept.is_empty() {
        paths.to_vec()
    } else {
        kept
    }
}

/// Whether a task changes what its code takes or is called: a new option or parameter, a
/// rename, a signature.
fn changes_interface(task: &str) -> bool {
    let lower = task.to_lowercase();
    ["option", "parameter", "argument", "rename", "signature", "keyword", "stub"].iter().any(|w| lower.contains(w))
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

/// The calls a task writes with literal arguments (`ordinalize(11) gives '11st'`): the
/// inputs a user saw go wrong, which tell candidates apart better than any a model invents.
pub fn example_calls(task: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (call, _) in calls_written(task) {
        // `ordinalize(11)` after `inflection.ordinalize(11)` is the same call.
        if !found.iter().any(|f| f == &call || f.ends_with(&format!(".{call}"))) {
            found.push(call);
        }
    }
    found
}

/// Verbs by which a bug report says what a call returns (`==` says what it should).
const VERBS: &[&str] = &["gives", "returns", "yields", "outputs", "produces", "prints", "gave", "returned", "->"];
/// Words after which a bug report writes what its call should give.
const SHOULD: &[&str] = &["instead of", "should give", "should return", "should yield", "should be"];
/// Words by which a task says that what it reports is wrong.
const WRONG: &[&str] = &["should", "expected", "instead", "wrong", "incorrect", " bug", "but "];

fn says_wrong(task: &str) -> bool {
    let lower = task.to_lowercase();
    WRONG.iter().any(|w| lower.contains(w))
}

/// The calls a bug report says go wrong: written with literal arguments and followed by
/// what they do (`ordinalize(11) gives '11st'`, `format('x', case='capitalize') raises
/// SQLParseError`), in a task that says something is wrong. A candidate after which each
/// does what it did before has not fixed the bug.
pub fn reported_calls(task: &str) -> Vec<String> {
    const RAISING: &[&str] = &["raises", "fails", "throws", "crashes"];
    if !says_wrong(task) {
        return Vec::new();
    }
    let mut found: Vec<String> = Vec::new();
    for (call, end) in calls_written(task) {
        let rest = task[end..].trim_start();
        if VERBS.iter().chain(RAISING).any(|v| rest.starts_with(v)) && !found.contains(&call) {
            found.push(call);
        }
    }
    found
}

/// What a bug report says its calls return (`ordinalize(11) gives '11st'`, the value as
/// Python would print it), when it also says something is wrong ("should", "instead"): a
/// candidate whose call still returns that has not fixed it.
pub fn reported_values(task: &str) -> Vec<(String, String)> {
    if !says_wrong(task) {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (call, end) in calls_written(task) {
        let rest = task[end..].trim_start();
        let Some(verb) = VERBS.iter().find(|v| rest.starts_with(*v)) else { continue };
        if let Some(value) = python_literal(rest[verb.len()..].trim_start()) {
            found.push((call, value));
        }
    }
    found
}

/// What a task says its calls should give, as Python would print it: each call written
/// `== value` (`camelize("device_type", False) == "deviceType"`), and in a bug report about
/// one call, the value after "instead of", "should give" and the like, or after the colon
/// of the sentence that says "should" (`yields 20, 40 but should start with the first
/// item: [10, 30, 50]`). With several calls reported, which value is whose is not told.
pub fn expected_values(task: &str) -> Vec<(String, String)> {
    let written = calls_written(task);
    let mut found: Vec<(String, String)> = written
        .iter()
        .filter_map(|(call, end)| {
            let value = task[*end..].trim_start().strip_prefix("==")?;
            Some((call.clone(), python_literal(value.trim_start())?))
        })
        .collect();
    if let [call] = reported_calls(task).as_slice() {
        let end = written.iter().find(|(c, _)| c == call).map_or(0, |(_, end)| *end);
        // Its sentence and the next ("... raises SQLParseError. It should give 'X'.").
        let rest = &task[end..];
        let near = rest.match_indices(". ").nth(1).map_or(rest, |(at, _)| &rest[..at]);
        if let Some(value) = found.iter().all(|(c, _)| c != call).then(|| should_give(near)).flatten() {
            found.push((call.clone(), value));
        }
    }
    found
}

/// The first value written after one of [`SHOULD`], else after the colon in the sentence
/// that says "should".
fn should_give(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let after = |at: usize| python_literal(text[at..].trim_start());
    let marked = SHOULD.iter().filter_map(|m| lower.find(m).map(|at| at + m.len())).filter_map(after).next();
    marked.or_else(|| {
        let at = lower.find("should")?;
        let sentence = text[at..].find(". ").map_or(&text[at..], |end| &text[at..at + end]);
        after(at + sentence.find(':')? + 1)
    })
}

/// Whether a probe's printed value is what the task says it should be: alike but for
/// spaces, an iterator's items as the list written.
pub fn gives(seen: &str, expected: &str) -> bool {
    let items = seen.strip_prefix("iter").filter(|_| expected.starts_with('['));
    same_value(items.unwrap_or(seen), expected)
}

/// Whether a probe's printed value is `reported` ([`reported_values`]): alike but for spaces.
pub fn same_value(seen: &str, reported: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    squeeze(seen) == squeeze(reported)
}

/// The literal `text` starts with, as Python prints it: a quoted string, a number, a
/// constant or a bracketed literal.
fn python_literal(text: &str) -> Option<String> {
    let first = text.chars().next()?;
    if first == '\'' || first == '"' {
        let inner = &text[1..text[1..].find(first)? + 1];
        return Some(if inner.contains('\'') && !inner.contains('"') {
            format!("\"{inner}\"")
        } else {
            format!("'{inner}'")
        });
    }
    if matches!(first, '[' | '(' | '{') {
        let close = closing(text)?;
        return Some(text[..=close].to_string());
    }
    let word: String = text.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_')).collect();
    let word = word.trim_end_matches('.');
    let number = word.trim_start_matches('-');
    let numeric = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.starts_with(|c: char| c.is_ascii_digit());
    (numeric || matches!(word, "True" | "False" | "None")).then(|| word.to_string())
}

/// Each call with literal arguments the task writes, and where it ends in the text:
/// past the brackets of builtins it is wrapped in (`list(split_at(...))`), whose calls
/// are not the code under change.
fn calls_written(task: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (open, _) in task.match_indices('(') {
        let name_start =
            task[..open].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).map_or(0, |i| i + 1);
        let name = task[name_start..open].trim_start_matches('.');
        if !name.split('.').all(is_identifier) || PYTHON_BUILTINS.contains(&name) {
            continue;
        }
        let Some(close) = closing(&task[open..]).filter(|&i| task[open + i..].starts_with(')')) else { continue };
        let call = format!("{name}{}", &task[open..open + close + 1]);
        let arguments = &call[name.len() + 1..call.len() - 1];
        // `add()` with nothing in it names a function ("fix add() in calc.py").
        if !arguments.trim().is_empty() && literal_arguments(arguments) {
            let wrappers = task[open + close + 1..].chars().take_while(|&c| c == ')').count();
            found.push((call, open + close + 1 + wrappers));
        }
    }
    found
}

/// Python's builtins that tasks call in their examples (`list(split_at(range(10), ...))`).
pub const PYTHON_BUILTINS: &[&str] = &[
    "all",
    "any",
    "bool",
    "bytes",
    "dict",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "getattr",
    "int",
    "isinstance",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "print",
    "range",
    "repr",
    "reversed",
    "set",
    "sorted",
    "str",
    "sum",
    "tuple",
    "type",
    "zip",
];

/// Where the bracket opening `text` closes, counting nested ones, outside quotes.
fn closing(text: &str) -> Option<usize> {
    let (mut depth, mut quote) = (0usize, None);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a call's arguments are literals only: quoted text, numbers, brackets, the
/// constants, builtins' calls and lambdas (no names a probe could not resolve).
fn literal_arguments(args: &str) -> bool {
    let mut outside = String::new();
    let mut quote = None;
    for c in args.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => outside.push(c),
        }
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // A lambda's parameters are bound in its body.
    let parameters: Vec<&str> = outside
        .match_indices("lambda")
        .filter_map(|(at, _)| outside[at + "lambda".len()..].split(':').next())
        .flat_map(|names| names.split(',').map(str::trim))
        .collect();
    let names_only_literals = outside.match_indices(|c: char| c.is_alphabetic() || c == '_').all(|(at, _)| {
        if outside[..at].ends_with(is_word) {
            return true;
        }
        let rest = &outside[at..];
        let word = &rest[..rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())];
        let after = rest[word.len()..].trim_start();
        // A keyword argument's name (`n=2`), a constant, a builtin's call or a lambda.
        (after.starts_with('=') && !after.starts_with("=="))
            || matches!(word, "True" | "False" | "None" | "lambda")
            || (PYTHON_BUILTINS.contains(&word) && after.starts_with('('))
            || parameters.contains(&word)
    });
    quote.is_none() && names_only_literals
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

    #[test]
    fn a_bug_report_says_what_its_calls_return_wrongly() {
        let task = "inflection.ordinalize(11) gives '11st' and ordinalize(112) gives \"112nd\". Numbers ending in 11 \
                    should get 'th'. chunked([1, 2], 3) returns [[1, 2], []], len(x) returns 3, f(-1) -> -2.0, g(0) gives None.";
        let found = reported_values(task);
        let want = [
            ("inflection.ordinalize(11)", "'11st'"),
            ("ordinalize(112)", "'112nd'"),
            ("chunked([1, 2], 3)", "[[1, 2], []]"),
            ("f(-1)", "-2.0"),
            ("g(0)", "None"),
        ];
        assert_eq!(found, want.map(|(c, v)| (c.to_string(), v.to_string())));
        assert!(same_value("[[1, 2], []]", "[[1,2],[]]") && !same_value("'11th'", "'11st'"));
        assert!(reported_values("ordinalize(11) gives '11th', as documented.").is_empty(), "nothing is said wrong");
        assert!(reported_values("ordinalize(11) should give '11th'").is_empty(), "what it should give");
    }

    #[test]
    fn a_call_in_a_builtin_with_a_lambda_is_an_example_and_its_value_follows_the_wrapper() {
        let task = "split_at stops one split early: list(split_at(range(10), lambda n: n % 2 == 1, maxsplit=2)) \
                    gives [[0], [2, 3]] instead of [[0], [2], [3]].";
        let call = "split_at(range(10), lambda n: n % 2 == 1, maxsplit=2)";
        assert_eq!(example_calls(task), [call], "neither list() nor range() is the code under change");
        assert_eq!(reported_values(task), [(call.to_string(), "[[0], [2, 3]]".to_string())]);
        assert_eq!(expected_values(task), [(call.to_string(), "[[0], [2], [3]]".to_string())]);
        assert!(gives("iter[[0], [2, 3]]", "[[0], [2, 3]]"), "a generator's items are what list() gives");
        assert!(example_calls("f(lambda n: m)").is_empty(), "a name the lambda does not bind");
        assert!(example_calls("f(sorted)").is_empty());
        assert_eq!(example_calls("f(g(1))"), ["g(1)"], "a call of another function is no literal");
    }

    #[test]
    fn a_task_says_what_its_calls_should_give() {
        let pairs = |task: &str| -> Vec<(String, String)> { expected_values(task) };
        let one = |call: &str, value: &str| vec![(call.to_string(), value.to_string())];
        assert_eq!(
            pairs("take_nth(2, [10, 20, 30]) yields 20 but should start with the first item: [10, 30]."),
            one("take_nth(2, [10, 20, 30])", "[10, 30]")
        );
        assert_eq!(pairs("f(1) gives [2] instead of [1]; so does f(3)."), one("f(1)", "[1]"));
        assert_eq!(
            pairs("remove_quotes('`a`') returns '`a`'. It should give 'a' as for quotes."),
            one("remove_quotes('`a`')", "'a'")
        );
        assert_eq!(
            pairs(r#"Add a flag: camelize("a_b", False) == "aB" and camelize("C", False) == 'c'."#),
            [("camelize(\"a_b\", False)", "'aB'"), ("camelize(\"C\", False)", "'c'")]
                .map(|(c, v)| (c.to_string(), v.to_string()))
        );
        assert_eq!(
            pairs("split('a;', strip=True) == ['a']. The stack should take the option."),
            one("split('a;', strip=True)", "['a']"),
            "`==` says what it should give, in a task that says `should` too"
        );
        assert!(pairs("get_in(['y'], {}) returns None instead of raising KeyError.").is_empty(), "no value");
        assert!(pairs("f(1) gives 'a' and f(2) gives 'b'; both should be 'c'.").is_empty(), "whose is not told");
        assert!(pairs("f(1) gives 2. Numbers should get one more. Note: 3 is fine.").is_empty(), "another sentence");
        assert!(pairs("f(1) gives 2. So it is. The docs say g should give 5.").is_empty(), "two sentences on");
        assert!(gives("iter[10, 30]", "[10, 30]") && gives("(1, 2)", "(1,2)"));
        assert!(!gives("iter[30]", "[10, 30]") && !gives("iter[1]", "'iter[1]'"));
    }

    #[test]
    fn the_calls_a_bug_report_says_go_wrong_are_those_it_says_something_of() {
        let task = "sqlparse.format('x', keyword_case='capitalize') raises SQLParseError, although documented. \
                    It should give 'X'; take_nth(2, [1, 2]) yields 2; peek(3) is fine.";
        assert_eq!(reported_calls(task), ["sqlparse.format('x', keyword_case='capitalize')", "take_nth(2, [1, 2])"]);
        assert!(reported_calls("f(1) returns 2, as documented").is_empty(), "nothing is said wrong");
    }

    #[test]
    fn the_calls_a_task_writes_with_literal_arguments_are_its_examples() {
        let task = "inflection.ordinalize(11) gives '11st' and ordinalize(112) gives '112nd'; \
                    windowed([1, (2, 3)], n=2) is wrong, f(x) is not literal, nor is g(, and (1) is no call. \
                    ordinalize(11) again, parse('a(b') too; fix h() in h.py.";
        assert_eq!(
            example_calls(task),
            ["inflection.ordinalize(11)", "ordinalize(112)", "windowed([1, (2, 3)], n=2)", "parse('a(b')"]
        );
    }

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
    fn type_stubs_are_edited_only_where_the_task_changes_an_interface() {
        let paths = ["pkg/more.py".to_string(), "pkg/more.pyi".to_string()];
        assert_eq!(editable("split_at stops one split early", &paths), ["pkg/more.py"]);
        assert_eq!(editable("Give split_at a keep_separator option", &paths), paths);
        assert_eq!(editable("fix a typo", &paths[1..]), ["pkg/more.pyi"], "nothing else to edit");
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
        for symbol in ["ordinalize", "format", "keyword_case", "key", "topk", "style"] {
            assert!(found.symbols.iter().any(|s| s == symbol), "{symbol} in {:?}", found.symbols);
        }
        assert_eq!(found.qualifiers, ["inflection", "sqlparse", "click"]);
        assert!(found.words.iter().any(|w| w == "windowed"), "{:?}", found.words);
        assert!(!found.words.iter().any(|w| w == "should" || w == "gives"), "{:?}", found.words);
        let found = terms("format(x, n=2) raises SQLParseError 'Invalid value for truncate_strings: 2'.");
        assert_eq!(found.phrases, ["Invalid value for truncate_strings"]);
    }
}
