//! What a small planner gets wrong about the workspace, put right before anything runs:
//! a file named that does not exist is mapped to the file it meant (`pkg.py` for a
//! package laid out as `pkg/__init__.py`, a bare file name for the one file of that name,
//! `pkg/unique.py` for the one file that defines the `unique` the task names) or kept as
//! a new file when the plan or the task declares it; otherwise it goes. A function the
//! task calls that no planned file defines brings in the one file that does. A new file the
//! task asks for by name replaces the existing files the planner chose; one it does not
//! ask for goes where the step has existing files to change. A step that changes only
//! files the planner was not shown and the task does not name goes, where another step
//! remains. A verify command for another language than the plan's files is replaced by
//! the runner of theirs. Each repair is said in the plan's event.

use std::path::Path;

use crate::pipeline::evidence::probes::module;
use crate::pipeline::heuristics;
use crate::pipeline::record::{Plan, Subtask};
use crate::tools::TestCommand;

/// The plan with its files and verify command made to fit the workspace at `root`
/// (whose files, relative, are `files`; the planner was shown `shown`), and what was
/// changed.
pub fn repair(mut plan: Plan, task: &str, root: &Path, files: &[String], shown: &[String]) -> (Plan, Vec<String>) {
    let mut repairs = Vec::new();
    let named = heuristics::terms(task).paths;
    let creating = heuristics::asks_for_new_file(task);
    // Files put in for what the task names: the planner did not see them, but meant them.
    let mut mapped = Vec::new();
    for step in &mut plan.subtasks {
        let mut kept = Vec::new();
        for path in step.files.drain(..) {
            let path = path.trim_start_matches("./").to_string();
            if root.join(&path).is_file() {
                kept.push(path);
            } else if let Some(meant) = meant(&path, files) {
                repairs.push(format!("{path} does not exist: {meant} is meant"));
                kept.push(meant);
            } else if let Some(definer) =
                (!creating && !named.contains(&path)).then(|| definer(&path, task, root, files)).flatten()
            {
                repairs.push(format!("{path} does not exist: {definer} defines what it is named after"));
                mapped.push(definer.clone());
                kept.push(definer);
            } else if step.new_files.contains(&path) || named.contains(&path) || creating {
                // The user's own path for the file, where the task names one (`util.py`,
                // which a planner makes `src/util.py`).
                let path = match named.iter().find(|n| same_name(n, &path) && !root.join(n).exists()) {
                    Some(theirs) if *theirs != path => {
                        repairs.push(format!("{path} is new: {theirs}, as the task says"));
                        theirs.clone()
                    }
                    _ => path,
                };
                if !step.new_files.contains(&path) {
                    step.new_files.push(path.clone());
                }
                kept.push(path);
            } else {
                repairs.push(format!("{path} does not exist and is not declared new: left out"));
            }
        }
        kept.dedup();
        // A new file beside existing ones, in a task that asks for none: a small planner
        // invents a module from a docstring's words, and every candidate then edits it.
        if !creating && kept.iter().any(|f| root.join(f).is_file()) {
            kept.retain(|f| {
                let invented = !root.join(f).exists() && !named.contains(f);
                if invented {
                    repairs.push(format!("{f} would be new, and the task asks for no new file: left out"));
                }
                !invented
            });
        }
        step.new_files.retain(|f| kept.contains(f) && !root.join(f).is_file());
        step.files = kept;
    }
    // A new file the task asks for by name is what the plan changes, whatever existing
    // files the planner chose (the entry points it was shown): "changes nothing else".
    let asked: Vec<String> = named.iter().filter(|p| creating && !root.join(p.as_str()).exists()).cloned().collect();
    let planned = plan.subtasks.iter().any(|s| s.files.iter().any(|f| asked.contains(f)));
    if let (Some(step), false) = (plan.subtasks.first_mut(), asked.is_empty() || planned) {
        repairs.push(format!("the task asks for {}: {} left out", asked.join(", "), step.files.join(", ")));
        step.files = asked.clone();
        step.new_files = asked;
    }
    // A function the task calls that no planned file defines: a small planner picks the
    // package's `__init__.py`, which imports it, and every candidate then changes nothing.
    if let Some((name, definer)) = called_definer(&plan, task, root, files) {
        repairs.push(format!("{definer} defines {name}, which the task calls and no planned file defines: added"));
        mapped.push(definer.clone());
        if let Some(step) = plan.subtasks.first_mut() {
            step.files.insert(0, definer);
        }
    }
    let known: Vec<String> = shown.iter().chain(&mapped).cloned().collect();
    without_unseen_steps(&mut plan, task, root, &known, &mut repairs);
    let touched: Vec<&String> = plan.subtasks.iter().flat_map(|s| &s.files).collect();
    match runner_for(&touched, &crate::tools::test_commands(root)) {
        Some(fitting) if !fits(&plan.verify, fitting) => {
            let replaced = if plan.verify.trim().is_empty() { "no verify command".into() } else { plan.verify.clone() };
            let command = fitting.label().to_string();
            repairs.push(format!("{replaced} does not fit the plan's files: {command}"));
            plan.verify = command;
        }
        // The files' language has no runner here: a command of another one goes.
        None if names_a_runner(&plan.verify) && language_of(&touched).is_some_and(|l| !fits(&plan.verify, l)) => {
            repairs.push(format!("{} does not fit the plan's files, and they have no test runner here", plan.verify));
            plan.verify = String::new();
        }
        _ => {}
    }
    (plan, repairs)
}

/// Drops the steps that change only existing files the planner was not shown (`known`
/// holds those, and the files found to define what the task names) and the task does not
/// name (as a path, a file name or a dotted module), where a step with files remains: a
/// small planner pads a one-line fix with guesses at files it never read ("validate the
/// options" in `engine.py`, which is `engine/__init__.py`, beside the fix in
/// `formatter.py`), and each step costs a batch of candidates.
fn without_unseen_steps(plan: &mut Plan, task: &str, root: &Path, known: &[String], repairs: &mut Vec<String>) {
    let paths = heuristics::terms(task).paths;
    let named = |path: &str| {
        paths.iter().any(|p| same_name(p, path))
            || module(path).is_some_and(|m| m.contains('.') && task.contains(m.as_str()))
    };
    let unseen = |step: &Subtask| {
        !step.files.is_empty() && step.files.iter().all(|f| root.join(f).is_file() && !known.contains(f) && !named(f))
    };
    if !plan.subtasks.iter().any(|s| !s.files.is_empty() && !unseen(s)) {
        return;
    }
    plan.subtasks.retain(|step| {
        let guessed = unseen(step);
        if guessed {
            repairs.push(format!(
                "{}: not shown to the planner nor named by the task; step left out",
                step.files.join(", ")
            ));
        }
        !guessed
    });
}

fn same_name(a: &str, b: &str) -> bool {
    a.rsplit('/').next() == b.rsplit('/').next()
}

/// The one language the files are written in, if they agree.
fn language_of(files: &[&String]) -> Option<TestCommand> {
    let mut wanted: Vec<TestCommand> = files.iter().filter_map(|f| TestCommand::for_file(f)).collect();
    wanted.sort_by_key(|c| c.label());
    wanted.dedup();
    (wanted.len() == 1).then(|| wanted[0])
}

/// The existing file a missing `path` stands for: `pkg.py` → `pkg/__init__.py` (also
/// under `src/`), or the only file in the workspace with that name.
fn meant(path: &str, files: &[String]) -> Option<String> {
    if let Some(stem) = path.strip_suffix(".py") {
        for candidate in [format!("{stem}/__init__.py"), format!("src/{stem}/__init__.py"), format!("src/{path}")] {
            if files.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    let name = path.rsplit('/').next()?;
    let mut same: Vec<&String> = files.iter().filter(|f| f.rsplit('/').next() == Some(name)).collect();
    same.retain(|f| !crate::tools::is_generated(f));
    (same.len() == 1).then(|| same[0].clone())
}

/// The one file that defines what a missing `path` is named after, when the task names
/// it as code: a planner makes `pkg/unique.py` of `pkg.unique`, which `pkg/itertoolz.py`
/// defines.
fn definer(path: &str, task: &str, root: &Path, files: &[String]) -> Option<String> {
    let (stem, ext) = path.rsplit('/').next()?.rsplit_once('.')?;
    if !heuristics::terms(task).symbols.iter().any(|s| s == stem) {
        return None;
    }
    only_definer(stem, ext, root, files)
}

/// A function the task calls with literal arguments (`get_in(['y'], {})`) and the one
/// file that defines it, where none of the plan's files (of that file's language)
/// defines any function the task calls.
fn called_definer(plan: &Plan, task: &str, root: &Path, files: &[String]) -> Option<(String, String)> {
    let planned: Vec<&String> = plan.subtasks.iter().flat_map(|s| &s.files).collect();
    let ext = planned.first()?.rsplit_once('.')?.1;
    let calls = heuristics::example_calls(task);
    let names: Vec<&str> = calls.iter().filter_map(|c| c.split('(').next()?.rsplit('.').next()).collect();
    let defined = |f: &String, name: &str| defines(root, f, name);
    if planned.iter().any(|f| names.iter().any(|n| defined(f, n))) {
        return None;
    }
    names.iter().find_map(|n| Some((n.to_string(), only_definer(n, ext, root, files)?)))
}

/// The one source file with extension `ext` (not a test, not generated) that defines `name`.
fn only_definer(name: &str, ext: &str, root: &Path, files: &[String]) -> Option<String> {
    let mut defining = files.iter().filter(|f| {
        f.ends_with(&format!(".{ext}"))
            && !crate::tools::is_generated(f)
            && !crate::tools::is_test_file(f)
            && defines(root, f, name)
    });
    let first = defining.next()?;
    defining.next().is_none().then(|| first.clone())
}

/// Whether the file at `path` under `root` has a line that starts a definition of `name`.
fn defines(root: &Path, path: &str, name: &str) -> bool {
    let heads = [format!("def {name}("), format!("class {name}"), format!("fn {name}")];
    std::fs::read_to_string(root.join(path))
        .is_ok_and(|text| text.lines().any(|l| heads.iter().any(|h| l.trim_start().starts_with(h.as_str()))))
}

/// The runner of the languages of `files`, when the workspace has it and they agree.
fn runner_for(files: &[&String], available: &[TestCommand]) -> Option<TestCommand> {
    language_of(files).filter(|one| available.contains(one))
}

/// Whether a verify command runs `runner`'s tests (or names no runner at all, say a
/// description of what to check).
fn fits(verify: &str, runner: TestCommand) -> bool {
    let named = runners_named(verify);
    !verify.trim().is_empty() && (named.is_empty() || named == [runner])
}

fn names_a_runner(verify: &str) -> bool {
    !runners_named(verify).is_empty()
}

/// The runners a command names.
fn runners_named(verify: &str) -> Vec<TestCommand> {
    let words: Vec<&str> = verify.split(|c: char| c.is_whitespace() || c == '`').collect();
    let names = |w: &[&str]| w.iter().any(|word| words.contains(word));
    [
        (TestCommand::Cargo, names(&["cargo"])),
        (TestCommand::Pytest, names(&["pytest", "python", "python3", "unittest", "tox"])),
        (TestCommand::Npm, names(&["npm", "yarn", "pnpm", "jest", "node"])),
        (TestCommand::Go, names(&["go"])),
    ]
    .into_iter()
    .filter_map(|(c, yes)| yes.then_some(c))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(files: &[&str], verify: &str) -> Plan {
        Plan {
            subtasks: vec![Subtask {
                description: "d".into(),
                files: files.iter().map(|f| f.to_string()).collect(),
                new_files: Vec::new(),
            }],
            verify: verify.into(),
        }
    }

    fn workspace(files: &[&str]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x = 1\n").unwrap();
        }
        (dir, files.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn missing_files_are_mapped_kept_as_new_or_left_out() {
        let (dir, files) = workspace(&["pkg/__init__.py", "pkg/core.py", "tests/test_core.py", "pyproject.toml"]);
        let (fixed, repairs) =
            repair(plan(&["pkg.py", "core.py", "imagined.py"], "pytest"), "Fix the bug", dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["pkg/__init__.py", "pkg/core.py"]);
        assert_eq!(repairs.len(), 3, "{repairs:?}");
        // A file the task names is new, not a mistake, and where the task says.
        let (fixed, _) = repair(plan(&["util.py"], "pytest"), "Add is_even to util.py", dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["util.py"]);
        assert_eq!(fixed.subtasks[0].new_files, ["util.py"]);
        let (fixed, repairs) = repair(
            plan(&["src/util.py"], "pytest"),
            "Add is_even(n) to a new file util.py",
            dir.path(),
            &files,
            &files,
        );
        assert_eq!(fixed.subtasks[0].files, ["util.py"], "{repairs:?}");
    }

    #[test]
    fn a_file_named_after_what_the_task_names_is_the_file_that_defines_it() {
        let (dir, files) = workspace(&["toolz/__init__.py", "toolz/itertoolz.py", "toolz/tests/test_itertoolz.py"]);
        std::fs::write(dir.path().join("toolz/itertoolz.py"), "def unique(seq):\n    return seq\n").unwrap();
        std::fs::write(dir.path().join("toolz/tests/test_itertoolz.py"), "def unique(x):\n    pass\n").unwrap();
        let task = "Add a `key` keyword to toolz.unique";
        let (fixed, repairs) = repair(plan(&["toolz/unique.py"], "pytest"), task, dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["toolz/itertoolz.py"], "{repairs:?}");
        let (fixed, _) = repair(plan(&["toolz/windowed.py"], "pytest"), task, dir.path(), &files, &files);
        assert!(fixed.subtasks[0].files.is_empty(), "the task does not name windowed");
    }

    #[test]
    fn the_file_that_defines_a_function_the_task_calls_joins_a_plan_without_it() {
        let (dir, files) = workspace(&["toolz/__init__.py", "toolz/dicttoolz.py", "toolz/tests/test_dicttoolz.py"]);
        std::fs::write(dir.path().join("toolz/__init__.py"), "from .dicttoolz import get_in\n").unwrap();
        std::fs::write(dir.path().join("toolz/dicttoolz.py"), "def get_in(keys, coll):\n    pass\n").unwrap();
        std::fs::write(dir.path().join("toolz/tests/test_dicttoolz.py"), "def get_in(x):\n    pass\n").unwrap();
        let task = "get_in(['y'], {}, no_default=True) returns None instead of raising KeyError";
        let (fixed, repairs) = repair(plan(&["toolz/__init__.py"], "pytest"), task, dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["toolz/dicttoolz.py", "toolz/__init__.py"], "{repairs:?}");
        let (fixed, repairs) = repair(plan(&["toolz/dicttoolz.py"], "pytest"), task, dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["toolz/dicttoolz.py"], "a planned file defines it: {repairs:?}");
        let (fixed, _) =
            repair(plan(&["toolz/__init__.py"], "pytest"), "assoc({}, 'a', 1) is wrong", dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["toolz/__init__.py"], "no file defines assoc");
    }

    #[test]
    fn a_new_file_the_task_asks_for_is_what_the_plan_changes() {
        let (dir, files) = workspace(&["Cargo.toml", "src/lib.rs", "src/main.rs"]);
        let task = "Add a function is_even(n) to a new file util.py";
        let (fixed, repairs) =
            repair(plan(&["src/lib.rs", "src/main.rs"], "cargo test"), task, dir.path(), &files, &files);
        assert_eq!(
            (&fixed.subtasks[0].files, &fixed.subtasks[0].new_files),
            (&vec!["util.py".to_string()], &vec!["util.py".to_string()])
        );
        assert!(repairs[0].contains("src/lib.rs, src/main.rs left out"), "{repairs:?}");
        assert_eq!(fixed.verify, "", "cargo test does not fit a Python file, which has no runner here");
    }

    #[test]
    fn a_new_file_the_task_does_not_ask_for_goes_beside_existing_ones() {
        let (dir, files) = workspace(&["inflection/__init__.py", "test_inflection.py"]);
        let invented = || {
            let mut p = plan(&["inflection/__init__.py", "inflection/translate.py"], "pytest");
            p.subtasks[0].new_files = vec!["inflection/translate.py".into()];
            p
        };
        let task = "inflection.parameterize(\"Donald E. Knuth\") returns 'donald_e_knuth'";
        let (fixed, repairs) = repair(invented(), task, dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["inflection/__init__.py"], "{repairs:?}");
        assert!(fixed.subtasks[0].new_files.is_empty());
        // Asked for, it stays.
        let (fixed, _) = repair(invented(), "Move transliterate to a new module", dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files.len(), 2);
        // Alone in its step, it is the step's work.
        let mut alone = plan(&["inflection/translate.py"], "pytest");
        alone.subtasks[0].new_files = vec!["inflection/translate.py".into()];
        let (fixed, _) = repair(alone, task, dir.path(), &files, &files);
        assert_eq!(fixed.subtasks[0].files, ["inflection/translate.py"]);
    }

    #[test]
    fn a_step_on_files_the_planner_never_saw_goes_where_another_remains() {
        let (dir, files) =
            workspace(&["sqlparse/formatter.py", "sqlparse/engine/__init__.py", "sqlparse/sql.py", "sqlparse/cli.py"]);
        let steps = |files: &[&[&str]]| Plan {
            subtasks: files
                .iter()
                .map(|f| Subtask {
                    description: "d".into(),
                    files: f.iter().map(|p| p.to_string()).collect(),
                    new_files: Vec::new(),
                })
                .collect(),
            verify: "pytest".into(),
        };
        let shown = vec!["sqlparse/formatter.py".to_string()];
        let task = "Rename strip_quotes and update its callers in sqlparse.sql";
        // `engine.py` is `engine/__init__.py`, which the planner never saw either.
        let padded = steps(&[&["sqlparse/formatter.py"], &["sqlparse/engine.py"], &["sqlparse/sql.py"]]);
        let (fixed, repairs) = repair(padded, task, dir.path(), &files, &shown);
        let kept: Vec<&[String]> = fixed.subtasks.iter().map(|s| s.files.as_slice()).collect();
        assert_eq!(kept, [&["sqlparse/formatter.py".to_string()][..], &["sqlparse/sql.py".to_string()][..]]);
        assert_eq!(repairs.len(), 2, "{repairs:?}");
        // The task names it by path: it stays.
        let (fixed, _) = repair(
            steps(&[&["sqlparse/formatter.py"], &["sqlparse/cli.py"]]),
            "Fix sqlparse/cli.py",
            dir.path(),
            &files,
            &shown,
        );
        assert_eq!(fixed.subtasks.len(), 2);
        let (fixed, _) = repair(
            steps(&[&["sqlparse/formatter.py"], &["sqlparse/cli.py"]]),
            "Fix cli.py",
            dir.path(),
            &files,
            &shown,
        );
        assert_eq!(fixed.subtasks.len(), 2, "a file name is a name too");
        // Every step unseen: the plan keeps them (nothing better to go on).
        let (fixed, _) = repair(steps(&[&["sqlparse/cli.py"]]), "Fix the options", dir.path(), &files, &shown);
        assert_eq!(fixed.subtasks.len(), 1);
    }

    #[test]
    fn a_verify_command_of_another_language_is_replaced() {
        let (dir, files) = workspace(&["Cargo.toml", "src/lib.rs", "tests/test_x.py", "app.py"]);
        let (fixed, repairs) = repair(plan(&["app.py"], "cargo test"), "Fix app", dir.path(), &files, &files);
        assert_eq!(fixed.verify, "pytest");
        assert_eq!(repairs.len(), 1);
        let (fixed, repairs) = repair(plan(&["src/lib.rs"], "cargo test"), "Fix lib", dir.path(), &files, &files);
        assert_eq!(fixed.verify, "cargo test");
        assert!(repairs.is_empty());
        // Words that name no runner stand.
        let (fixed, _) = repair(plan(&["app.py"], "the function returns 4"), "Fix app", dir.path(), &files, &files);
        assert_eq!(fixed.verify, "the function returns 4");
        // A Python file in a workspace with cargo tests only: cargo test goes, nothing replaces it.
        let (dir, files) = workspace(&["Cargo.toml", "src/lib.rs"]);
        let (fixed, repairs) = repair(plan(&["util.py"], "cargo test"), "Add util.py", dir.path(), &files, &files);
        assert_eq!((fixed.verify.as_str(), repairs.len()), ("", 1), "{repairs:?}");
    }
}
