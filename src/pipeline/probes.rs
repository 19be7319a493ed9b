//! Behaviour probes: agreement of behaviour picks among candidates that pass the tests
//! (MBR-exec; CodeT's dual agreement without trusting expected values a small model
//! would get wrong). After planning, the reviewer model writes calls of the code under
//! change with edge-case inputs, never their results. Every candidate runs them, and
//! candidates that return the same on every call stand as one choice on the ballot
//! ([`super::ballot::most_agreed`]): independent samples that agree on inputs nobody
//! tested are more often right than a 0.5B voter reading diffs. In the eval runs of
//! 2026-11-25 (`evals/RESULTS.md`), where the standing candidates differed on the hidden
//! test, the chosen one passed it in 4 of 6 rounds with probes and 0 of 3 without. A
//! call also shows whether it changed its arguments, and whether an exception was a
//! crash of the candidate's code; those are its [`faults`].
//!
//! The calls are Python expressions, so probes run only in workspaces whose tests run
//! under pytest; they run as a pytest test through `run_tests`, which bounds their time.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::plan::{Context, Plan};
use super::worktree::Scratch;
use super::{Ctx, Event, PipelineError};
use crate::models::Role;
use crate::state::Stage;
use crate::tools::TestCommand;

/// The probe test, written into a candidate's worktree after its own tests ran.
const FILE: &str = "test_quorum_probes.py";
/// Where the probe test leaves what each call returned.
const OUT: &str = ".quorum-probes.json";
/// What follows a call's result when the call changed its arguments.
const CHANGES: &str = "; changes argument";
/// What follows an exception's name when the candidate's own code raised it, not a
/// `raise` statement and not the probe's expression.
const CRASH: &str = " (crash)";
/// Exceptions that say the code broke, not that it refused the input (as `ValueError`
/// or `TypeError` may, on purpose, even raised by `int()`): an index or key that is not
/// there, a hang.
const CRASHES: [&str; 8] = [
    "IndexError",
    "KeyError",
    "AttributeError",
    "ZeroDivisionError",
    "RecursionError",
    "TimeoutError",
    "NameError",
    "UnboundLocalError",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Probes {
    /// The modules the calls see (`from module import *`, underscored names too).
    pub modules: Vec<String>,
    /// Python expressions.
    pub calls: Vec<String>,
}

impl Probes {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() || self.modules.is_empty()
    }
}

/// Probes for the plan's code files, or none: asked for (`probes` > 0), tests under
/// pytest, Python files to change.
pub async fn generate(ctx: &Ctx<'_>, task: &str, plan: &Plan, context: &Context) -> Result<Probes, PipelineError> {
    let root = ctx.tools.workspace().root();
    let pytest = crate::tools::test_commands(root).first() == Some(&TestCommand::Pytest);
    if ctx.options.probes == 0 || !ctx.has_tests() || !pytest {
        return Ok(Probes::default());
    }
    let paths: Vec<&String> = plan
        .subtasks
        .iter()
        .flat_map(|s| &s.files)
        .filter(|p| module(p).is_some() && !crate::tools::is_test_file(p))
        .collect();
    let shown: Vec<_> = context.files.iter().filter(|f| paths.contains(&&f.path)).cloned().collect();
    if shown.is_empty() {
        return Ok(Probes::default());
    }
    let modules: Vec<String> = shown.iter().filter_map(|f| module(&f.path)).collect();
    let n = ctx.options.probes;
    let user = format!(
        "Task:\n{task}\n\nCode:\n{}\nWrite {n} calls of the functions this task is about, each a Python expression with literal \
         arguments such as `name(...)`, that probe the cases the text describes in words but its examples do not show: empty \
         input, a single element, zero or negative numbers, boundaries, repeated or unusual characters, inputs it says are invalid.",
        super::plan::render_files(&shown)
    );
    let schema = json!({
        "type": "object",
        "properties": {"calls": {"type": "array", "minItems": 1, "maxItems": n, "items": {"type": "string", "maxLength": 120}}},
        "required": ["calls"]
    });
    // 120 characters of code are about 40 tokens; the rest is JSON.
    let answer = ctx.ask_json_as(crate::prompts::PROBES, Role::Reviewer, &schema, user, 50 * n + 40).await;
    // Probes only sharpen the vote: without them (a model error, an answer cut off) the
    // task goes on as before.
    let (calls, error) = match answer {
        Ok(answer) => {
            (serde_json::from_str::<serde_json::Value>(&answer).map(|v| calls(&v["calls"])).unwrap_or_default(), None)
        }
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let probes = Probes { modules, calls };
    ctx.emit(Stage::Plan, Event::Probes { modules: probes.modules.clone(), calls: probes.calls.clone(), error })
        .await?;
    Ok(probes)
}

/// The usable calls: one line each, a call at all, no repeats.
fn calls(answer: &serde_json::Value) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    for call in answer.as_array().into_iter().flatten().filter_map(|c| c.as_str()).map(str::trim) {
        if !call.is_empty() && !call.contains('\n') && call.contains('(') && !calls.iter().any(|c| c == call) {
            calls.push(call.to_string());
        }
    }
    calls
}

/// How many of a candidate's probe results are faults: a crash of its own code (one of
/// [`CRASHES`], unless the task names it: "pop raises IndexError when empty"), or a call
/// that returned a value and changed its arguments, unless the task asks for work in
/// place. Voting counts them only against other candidates' ([`super::ballot`]).
pub fn faults(seen: &[String], task: &str) -> usize {
    let lower = task.to_lowercase();
    let in_place = ["in place", "in-place", "inplace"].iter().any(|w| lower.contains(w));
    seen.iter()
        .filter(|s| match s.strip_prefix("raises ").and_then(|s| s.strip_suffix(CRASH)) {
            Some(name) => !task.contains(name),
            None => !in_place && s.contains(CHANGES) && !s.starts_with("None;"),
        })
        .count()
}

/// The module a Python file is imported as from the workspace root, if it can be.
fn module(path: &str) -> Option<String> {
    let stem = path.strip_suffix(".py")?;
    let mut parts: Vec<&str> = stem.split('/').collect();
    if parts.last() == Some(&"__init__") {
        parts.pop();
    }
    let identifier = |p: &&str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    (!parts.is_empty() && parts.iter().all(identifier)).then(|| parts.join("."))
}

/// The probe test. Each call has 2 seconds; an exception is a result too (its type, and
/// whether it was a crash). Results print so that equal behaviour prints alike across
/// processes: sets sorted (string hashing is seeded per process), iterators as what they
/// yield, no addresses.
fn script(probes: &Probes) -> String {
    // A JSON array of strings is a Python list literal.
    let list = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let crashes: Vec<String> = CRASHES.iter().map(|s| s.to_string()).collect();
    format!(
        r#"import ast, importlib, itertools, json, linecache, os, re, signal, sys
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODULES = {modules}
CALLS = {calls}
CRASHES = {crashes}


def _show(value, depth=0, use=True):
    if depth > 8:
        return "..."
    show = lambda v: _show(v, depth + 1, use)
    if isinstance(value, (set, frozenset)):
        items = ", ".join(sorted(show(v) for v in value))
        return type(value).__name__ + ("({{" + items + "}})" if items else "()")
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{{" + ", ".join(show(k) + ": " + show(v) for k, v in value.items()) + "}}"
    if isinstance(value, Iterator):
        # Showing an argument before the call must not use it up.
        return "iter" + show(list(itertools.islice(value, 100))) if use else "iter"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _call(call, space):
    # A call with plain arguments runs on values kept aside, so that what it does to
    # them shows too; anything else is evaluated as it stands.
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        node = None
    plain = isinstance(node, ast.Call) and not any(isinstance(a, ast.Starred) for a in node.args) and all(k.arg for k in node.keywords)
    if not plain:
        return _show(eval(call, space)), []
    value = lambda n: eval(compile(ast.Expression(n), "<probe>", "eval"), space)
    function = value(node.func)
    args = [value(a) for a in node.args]
    kwargs = {{k.arg: value(k.value) for k in node.keywords}}

    def kept():
        try:
            return [_show(a, use=False) for a in args + list(kwargs.values())]
        except Exception:
            return None

    before = kept()
    shown = _show(function(*args, **kwargs))
    after = kept()
    return shown, [str(i + 1) for i, (b, a) in enumerate(zip(before or [], after or [])) if b != a]


def _crashed(error):
    # The innermost frame in the workspace's code (not this file): a crash unless that
    # line is a `raise` statement. None there: the probe's own expression failed.
    tb, frame = error.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        path = os.path.abspath(name)
        if not name.startswith("<") and path.startswith(HERE + os.sep) and path != os.path.abspath(__file__) and "site-packages" not in path:
            frame = tb
        tb = tb.tb_next
    return frame is not None and not linecache.getline(frame.tb_frame.f_code.co_filename, frame.tb_lineno).strip().startswith("raise")


def _timeout(signum, frame):
    raise TimeoutError("the call took over 2 s")


def test_quorum_probes():
    space = {{}}
    for name in MODULES:
        space.update(vars(importlib.import_module(name)))
    signal.signal(signal.SIGALRM, _timeout)
    seen = []
    for call in CALLS:
        signal.alarm(2)
        try:
            shown, changed = _call(call, dict(space))
            seen.append(shown[:300] + ("{CHANGES} " + ", ".join(changed) if changed else ""))
        except BaseException as e:
            name = type(e).__name__
            seen.append("raises " + name + ("{CRASH}" if name in CRASHES and _crashed(e) else ""))
        finally:
            signal.alarm(0)
    with open(os.path.join(HERE, "{OUT}"), "w") as f:
        json.dump(seen, f)
"#,
        modules = list(&probes.modules),
        calls = list(&probes.calls),
        crashes = list(&crashes),
    )
}

/// What each probe returns with the candidate in `scratch`; None when the probes could not
/// run (a module that does not import, a hang in native code, a test layout pytest does
/// not collect the probe file from, a file of that name already there).
pub async fn observe(ctx: &Ctx<'_>, scratch: &Scratch, probes: &Probes) -> Result<Option<Vec<String>>, PipelineError> {
    if probes.is_empty() {
        return Ok(None);
    }
    let (file, out) = (scratch.path().join(FILE), scratch.path().join(OUT));
    // The file system blocks: off the async threads, as the worktrees are.
    let written = {
        let (file, out, text) = (file.clone(), out.clone(), script(probes));
        super::code::blocking(move || {
            if file.exists() || out.exists() {
                return Ok(false);
            }
            std::fs::write(&file, text).map_err(|e| PipelineError::Workspace(format!("writing the probes: {e}")))?;
            Ok(true)
        })
        .await?
    };
    if !written {
        return Ok(None);
    }
    // Collecting the tests, then 2 seconds a call: a hang the alarm cannot break (native
    // code) ends here, not at the tests' own limit.
    let timeout = 30 + 2 * probes.calls.len() as u64;
    let ran = super::code::run_tests_matching(ctx, scratch, Some("test_quorum_probes"), timeout).await;
    let seen = super::code::blocking(move || {
        let seen = std::fs::read_to_string(&out).ok().and_then(|s| serde_json::from_str::<Vec<String>>(&s).ok());
        // The worktree's diff is taken already; the files go so that nothing else sees them.
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&out);
        Ok(seen)
    })
    .await?;
    let ran = ran?;
    let seen = seen.filter(|s| s.len() == probes.calls.len());
    if seen.is_none() {
        tracing::debug!(worktree = %scratch.path().display(), output = %ran.tail(20), "the probes left no results");
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_files_name_their_modules() {
        assert_eq!(module("solution.py").as_deref(), Some("solution"));
        assert_eq!(module("pkg/sub/mod.py").as_deref(), Some("pkg.sub.mod"));
        assert_eq!(module("pkg/__init__.py").as_deref(), Some("pkg"));
        assert_eq!(module("my-scripts/run.py"), None);
        assert_eq!(module("2fa.py"), None);
        assert_eq!(module("lib.rs"), None);
    }

    #[test]
    fn only_single_line_calls_count_once() {
        let answer = json!(["f('')", " f('') ", "f(\n1)", "", "42", "g(1, [2])"]);
        assert_eq!(calls(&answer), ["f('')", "g(1, [2])"]);
        assert!(calls(&json!("f()")).is_empty());
    }

    #[test]
    fn the_probe_test_records_results_and_exceptions() {
        let dir = tempfile::tempdir().unwrap();
        let code = [
            "def f(x):\n    return {x, 'b', 'a'} if x else 1 // x",
            "def slow():\n    while True: pass",
            "def drop(xs, n=1):\n    del xs[:n]\n    return len(xs)",
            "def clear(xs):\n    xs.clear()",
            "def need(d, k):\n    if k not in d:\n        raise KeyError(k)\n    return d[k]",
            "def first(xs):\n    return xs[0]",
            "def firsts(rows):\n    return [next(r) for r in rows]",
        ];
        std::fs::write(dir.path().join("m.py"), code.join("\n\n") + "\n").unwrap();
        let calls = [
            ("f('c')", "set({'a', 'b', 'c'})"),
            ("f(0)", "raises ZeroDivisionError (crash)"),
            ("slow()", "raises TimeoutError (crash)"),
            ("f(", "raises SyntaxError"),
            ("[frozenset(), iter([1, (2,)]), {1: {'x'}}]", "[frozenset(), iter[1, (2,)], {1: set({'x'})}]"),
            ("drop([3, 4], n=0)", "2"),
            ("drop([3, 4])", "1; changes argument 1"),
            // Unpacked arguments are not kept aside.
            ("drop(*[[3]])", "0"),
            ("clear([1])", "None; changes argument 1"),
            // A `raise` statement refuses; the probe's own expression failing is no crash.
            ("need({}, 'k')", "raises KeyError"),
            ("first([])", "raises IndexError (crash)"),
            ("first([[]])[0]", "raises IndexError"),
            // Arguments are shown without using up the iterators in them.
            ("firsts([iter([7])])", "[7]"),
        ];
        let probes = Probes { modules: vec!["m".into()], calls: calls.iter().map(|(c, _)| c.to_string()).collect() };
        std::fs::write(dir.path().join(FILE), script(&probes)).unwrap();
        let run = std::process::Command::new("python3")
            .args(["-c", &format!("import {0}; {0}.test_quorum_probes()", FILE.trim_end_matches(".py"))])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(run.success());
        let seen: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.path().join(OUT)).unwrap()).unwrap();
        assert_eq!(seen, calls.iter().map(|(_, shown)| shown.to_string()).collect::<Vec<_>>());
        assert_eq!(faults(&seen, "Drop items."), 4, "three crashes and a changed argument with a value returned");
        assert_eq!(
            faults(&seen, "Drop items in place; raises ZeroDivisionError on zero."),
            2,
            "a hang and an IndexError"
        );
    }
}
