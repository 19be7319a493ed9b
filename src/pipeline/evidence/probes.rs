//! Behaviour probes: agreement of behaviour picks among candidates that pass the tests
//! (MBR-exec; CodeT's dual agreement without trusting expected values a small model
//! would get wrong). After planning, the reviewer model writes calls of the code under
//! change with edge-case inputs, never their results. Every candidate runs them, and
//! candidates that return the same on every call stand as one choice on the ballot
//! ([`crate::pipeline::ballot::most_agreed`]): independent samples that agree on inputs nobody
//! tested are more often right than a 0.5B voter reading diffs. In the eval runs of
//! 2026-11-25 (`evals/RESULTS.md`), where the standing candidates differed on the hidden
//! test, the chosen one passed it in 4 of 6 rounds with probes and 0 of 3 without. A
//! call also shows whether it changed its arguments, and whether an exception was a
//! crash of the candidate's code; those are its [`faults`].
//!
//! The calls are Python expressions, so probes run only in workspaces whose tests run
//! under pytest; they run as a pytest test through `run_tests`, which bounds their time.

use crate::pipeline::evidence::memo::TreeId;
use crate::pipeline::evidence::worktree::Scratch;
use crate::pipeline::evidence::Selection;
pub use crate::pipeline::record::{Outcome, Probes};
use crate::pipeline::{heuristics, tuning, Ctx, PipelineError};
use crate::tools::TestCommand;

/// The probe test, written into a candidate's worktree (after its own tests ran where
/// those are the whole suite, which would collect it).
const FILE: &str = "test_quorum_probes.py";
const PROBE_TEST: &str = include_str!("probe.py");
/// Where the probe test leaves what each call returned.
const OUT: &str = ".quorum-probes.json";
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

/// How many of a candidate's probe results are faults: a crash of its own code (one of
/// [`CRASHES`], unless the task names it: "pop raises IndexError when empty"), or a call
/// that returned a value and changed its arguments, unless the task asks for work in
/// place. Voting counts them only against other candidates' ([`crate::pipeline::ballot`]).
pub fn faults(seen: &[Outcome], task: &str) -> usize {
    let in_place = heuristics::asks_in_place(task);
    seen.iter()
        .filter(|outcome| match outcome {
            Outcome::Raised { exception, crash } => *crash && !heuristics::names_exception(task, exception),
            Outcome::Returned { value, changed } => !in_place && !changed.is_empty() && value != "None",
        })
        .count()
}

/// One call's result as the probe test writes it.
#[derive(serde::Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Seen {
    Returned { value: String, changed: Vec<u32> },
    Raised { raises: String, crash: bool },
}

impl From<Seen> for Outcome {
    fn from(seen: Seen) -> Outcome {
        match seen {
            Seen::Returned { value, changed } => Outcome::Returned { value, changed },
            Seen::Raised { raises, crash } => Outcome::Raised { exception: raises, crash },
        }
    }
}

/// The results the probe test left in `text`.
fn parse(text: &str) -> Option<Vec<Outcome>> {
    let seen: Vec<Seen> = serde_json::from_str(text).ok()?;
    Some(seen.into_iter().map(Outcome::from).collect())
}

/// The module a Python file is imported as from the workspace root, if it can be.
pub fn module(path: &str) -> Option<String> {
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

/// The probe test. Each call has `PROBE_CALL_SECS`; an exception is a result too (its type, and
/// whether it was a crash). Results print so that equal behaviour prints alike across
/// processes: sets sorted (string hashing is seeded per process), iterators as what they
/// yield, no addresses.
fn script(probes: &Probes) -> String {
    // A JSON array of strings is a Python list literal.
    let list = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let crashes: Vec<String> = CRASHES.iter().map(|s| s.to_string()).collect();
    PROBE_TEST
        .replace("__MODULES__", &list(&probes.modules))
        .replace("__CALLS__", &list(&probes.calls))
        .replace("__CRASHES__", &list(&crashes))
        .replace("__OUT__", OUT)
        .replace("__CALL_SECS__", &tuning::PROBE_CALL_SECS.to_string())
}

/// What each probe returns with the candidate in `scratch`, whose files are `tree` (a tree
/// probed before is not probed again); None when the probes could not run (a module that
/// does not import, a hang in native code, a test layout pytest does not collect the probe
/// file from, a file of that name already there).
pub async fn observe(
    ctx: &Ctx<'_>,
    scratch: &Scratch,
    tree: TreeId,
    probes: &Probes,
) -> Result<Option<Vec<Outcome>>, PipelineError> {
    if probes.is_empty() {
        return Ok(None);
    }
    ctx.seen.probes.get_or_make((tree, probes), |_| true, || run(ctx, scratch, probes)).await
}

async fn run(ctx: &Ctx<'_>, scratch: &Scratch, probes: &Probes) -> Result<Option<Vec<Outcome>>, PipelineError> {
    let (file, out) = (scratch.path().join(FILE), scratch.path().join(OUT));
    // The file system blocks: off the async threads, as the worktrees are.
    let written = {
        let (file, out, text) = (file.clone(), out.clone(), script(probes));
        crate::pipeline::evidence::blocking(move || {
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
    // Collecting the tests, then a few seconds a call: a hang the alarm cannot break (native
    // code) ends here, not at the tests' own limit.
    let timeout = tuning::PROBE_SETUP_SECS + tuning::PROBE_CALL_SECS * probes.calls.len() as u64;
    let only_probes =
        Selection { command: TestCommand::Pytest, paths: vec![FILE.to_string()], package: None, names: Vec::new() };
    let ran = crate::pipeline::evidence::run_selected(ctx, scratch, &only_probes, timeout, true).await;
    let seen = crate::pipeline::evidence::blocking(move || {
        let seen = std::fs::read_to_string(&out).ok().and_then(|s| parse(&s));
        // The worktree's diff is taken already; the files go so that nothing else sees them.
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&out);
        Ok(seen)
    })
    .await?;
    let ran = ran?;
    let seen = seen.filter(|s| s.len() == probes.calls.len());
    if seen.is_none() {
        tracing::debug!(worktree = %scratch.path().display(), output = %ran.output_tail, "the probes left no results");
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
            // The module's own name reaches it, as a task writes the call.
            ("m.first([5])", "5"),
        ];
        let probes = Probes { modules: vec!["m".into()], calls: calls.iter().map(|(c, _)| c.to_string()).collect() };
        std::fs::write(dir.path().join(FILE), script(&probes)).unwrap();
        let run = std::process::Command::new("python3")
            .args(["-c", &format!("import {0}; {0}.test_quorum_probes()", FILE.trim_end_matches(".py"))])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(run.success());
        let seen = parse(&std::fs::read_to_string(dir.path().join(OUT)).unwrap()).unwrap();
        let shown: Vec<String> = seen.iter().map(Outcome::to_string).collect();
        assert_eq!(shown, calls.iter().map(|(_, shown)| shown.to_string()).collect::<Vec<_>>());
        assert_eq!(
            seen.iter().map(|s| Outcome::from(s.to_string())).collect::<Vec<_>>(),
            seen,
            "saved lines load back"
        );
        assert_eq!(faults(&seen, "Drop items."), 4, "three crashes and a changed argument with a value returned");
        assert_eq!(
            faults(&seen, "Drop items in place; raises ZeroDivisionError on zero."),
            2,
            "a hang and an IndexError"
        );
    }
}
