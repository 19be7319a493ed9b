#!/usr/bin/env python3
"""The repository eval set: real projects from PyPI, tasks injected into them, hidden tests.

    repos.py fetch                      download and verify every project (projects.json)
    repos.py prepare TASK_ID DEST       the workspace the pipeline sees, as a git repository
    repos.py verdict TASK_ID TREE       JSON: does the change in TREE pass the task's hidden
                                        tests and break no test that passed before?
    repos.py validate [TASK_ID ...]     the original passes, the workspace collects without
                                        the hidden tests, the injected state fails them (so
                                        an untouched workspace fails), the reference passes
    repos.py stats                      lines of Python and tests per project

A task (tasks.jsonl) injects a change into the original source (`inject`: exact
replacements) and names the tests that reveal it (`hidden`: files or pytest node ids).
The workspace holds the injected state without the hidden tests; the reference change
is the injection undone. A verdict puts the project's original tests back over the
changed tree, so a change to a test file counts for nothing.

Sources are cached under $QUORUM_CACHE/repos (default ~/.cache/quorum/repos), never in
the work tree. Progress goes to stderr, answers to stdout.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(os.environ.get("QUORUM_CACHE") or os.path.expanduser("~/.cache/quorum"), "repos")
SUITE_TIMEOUT = 900
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (.+?)(?: - .*)?$")
# A failed unittest subTest: the test itself is reported PASSED before these lines.
SUBFAILED = re.compile(r"^SUBFAILED.*?\) (\S+\.py::\S+)")
GOOD = {"PASSED", "XFAIL", "XPASS"}


def log(message):
    print(message, file=sys.stderr, flush=True)


def projects():
    with open(os.path.join(HERE, "projects.json"), encoding="utf-8") as f:
        return json.load(f)


def load_tasks(path=None):
    with open(path or os.path.join(HERE, "tasks.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def task_by_id(task_id, path=None):
    for task in load_tasks(path):
        if task["task_id"] == task_id:
            return task
    sys.exit("no task %r in the task file" % task_id)


def source(name):
    """The unpacked original source of a project, fetched and verified on first use."""
    spec = projects()[name]
    dest = os.path.join(CACHE, "src", "%s-%s" % (name, spec["version"]))
    if os.path.isdir(dest):
        return dest
    archive = os.path.join(CACHE, "archives", spec["url"].rsplit("/", 1)[1])
    if not os.path.isfile(archive) or sha256(archive) != spec["sha256"]:
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        log("fetching %s %s" % (name, spec["version"]))
        partial = archive + ".partial"
        with urllib.request.urlopen(spec["url"], timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
        got = sha256(partial)
        if got != spec["sha256"]:
            os.remove(partial)
            sys.exit("%s: sha256 %s, expected %s" % (spec["url"], got, spec["sha256"]))
        os.replace(partial, archive)
    unpacking = tempfile.mkdtemp(prefix="unpack-", dir=os.path.join(CACHE))
    with tarfile.open(archive) as tar:
        # The "data" filter (Python 3.12, backported to 3.11.4) refuses links out of the tree.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(unpacking, filter="data")
        else:
            tar.extractall(unpacking)
    (top,) = os.listdir(unpacking)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    os.replace(os.path.join(unpacking, top), dest)
    os.rmdir(unpacking)
    return dest


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_tree(src, dest):
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache"))


def inject(root, task):
    for edit in task["inject"]:
        path = os.path.join(root, edit["file"])
        with open(path, encoding="utf-8") as f:
            text = f.read()
        count = text.count(edit["old"])
        if count != 1:
            raise ValueError("%s: the text to replace occurs %d times in %s" % (task["task_id"], count, edit["file"]))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(edit["old"], edit["new"]))


def hide(root, hidden):
    """Takes the hidden tests out: whole files, or test functions and methods by node id."""
    import ast

    for node_id in hidden:
        path, *names = node_id.split("::")
        full = os.path.join(root, path)
        if not names:
            os.remove(full)
            continue
        with open(full, encoding="utf-8") as f:
            lines = f.read().split("\n")
        body = ast.parse("\n".join(lines)).body
        for name in names[:-1]:
            body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == name).body
        node = next(n for n in body if getattr(n, "name", None) == names[-1])
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        del lines[first - 1 : node.end_lineno]
        with open(full, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))


def git(root, *args):
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    identity = ["-c", "user.name=quorum eval", "-c", "user.email=eval@quorum.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=root, env=env, check=True, capture_output=True)


def prepare(task, dest):
    """The workspace of a task: the injected state without its hidden tests, committed."""
    copy_tree(source(task["project"]), dest)
    inject(dest, task)
    hide(dest, task["hidden"])
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "--no-verify", "-m", "%s %s" % (task["project"], projects()[task["project"]]["version"]))


def python_env(root):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.path.join(root, "src")]), PYTHONDONTWRITEBYTECODE="1")


def collect(root):
    """(whether pytest collects the suite without errors, the node ids it collects)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=root, env=python_env(root), capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    return done.returncode == 0, [line for line in done.stdout.splitlines() if "::" in line]


def run_suite(root, only=None):
    """{node id: outcome} of pytest in `root` (the whole suite, or `only`)."""
    env = python_env(root)
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "--tb=no", "-p", "no:cacheprovider",
               "--continue-on-collection-errors", *(only or [])]
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"<suite>": "TIMEOUT"}
    outcomes = {}
    for line in done.stdout.splitlines():
        match = OUTCOME.match(line)
        if match:
            outcomes[match.group(2)] = match.group(1)
        sub = SUBFAILED.match(line)
        if sub:
            outcomes[sub.group(1)] = "FAILED"
    if done.returncode not in (0, 1) and not any(o not in GOOD for o in outcomes.values()):
        outcomes["<suite>"] = "ERROR exit %d: %s" % (done.returncode, (done.stdout + done.stderr)[-400:])
    return outcomes


def with_original_tests(task, tree, dest):
    """`tree` (a changed workspace) with the project's original tests put back, in `dest`."""
    original = source(task["project"])
    copy_tree(tree, dest)
    for path in projects()[task["project"]]["tests"]:
        target = os.path.join(dest, path)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
        if os.path.isdir(os.path.join(original, path)):
            copy_tree(os.path.join(original, path), target)
        else:
            shutil.copy2(os.path.join(original, path), target)


def hidden_of(task, outcomes):
    """The outcomes of the hidden tests (a node id names itself and its parameter cases)."""
    def under(node):
        return any(node == h or node.startswith(h + "::") or node.startswith(h + "[") for h in task["hidden"])

    return {n: o for n, o in outcomes.items() if under(n) or n == "<suite>"}


def task_key(task):
    spec = projects()[task["project"]]
    return hashlib.sha256(json.dumps([task, spec["sha256"], sys.version_info[:2]], sort_keys=True).encode()).hexdigest()[:16]


def baseline(task):
    """The whole suite on the injected state, original tests in place (cached)."""
    path = os.path.join(CACHE, "baselines", "%s.json" % task_key(task))
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    with tempfile.TemporaryDirectory(prefix="quorum-baseline-") as tmp:
        injected = os.path.join(tmp, "injected")
        copy_tree(source(task["project"]), injected)
        inject(injected, task)
        outcomes = run_suite(injected)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".partial", "w", encoding="utf-8") as f:
        json.dump(outcomes, f)
    os.replace(path + ".partial", path)
    return outcomes


def verdict(task, tree):
    """Whether the change in `tree` passes the hidden tests and breaks none that passed before."""
    before = baseline(task)
    with tempfile.TemporaryDirectory(prefix="quorum-verdict-") as tmp:
        checked = os.path.join(tmp, "tree")
        with_original_tests(task, tree, checked)
        after = run_suite(checked)
    hidden = hidden_of(task, after)
    hidden_failed = sorted(n for n, o in hidden.items() if o not in GOOD)
    broken = sorted(n for n, o in before.items() if o in GOOD and after.get(n) not in GOOD and n not in hidden)
    passed = bool(hidden) and not hidden_failed and not broken
    return {"passed": passed, "hidden_passed": len(hidden) - len(hidden_failed), "hidden_failed": hidden_failed[:20],
            "broken": broken[:20], "broken_count": len(broken), "tests_run": len(after)}


def reference_tree(task, dest):
    """The workspace with the reference change made: the injected files as they were."""
    prepare(task, dest)
    for path in changed_files(task):
        shutil.copy2(os.path.join(source(task["project"]), path), os.path.join(dest, path))


def validate(tasks):
    problems, originals = [], {}
    for task in tasks:
        tid = task["task_id"]
        log("validating %s" % tid)
        keys = {"task_id", "project", "kind", "prompt", "inject", "hidden"}
        if set(task) != keys or task["kind"] not in ("bug", "feature", "multi-file"):
            problems.append("%s: keys %s, kind %r" % (tid, sorted(task), task.get("kind")))
            continue
        if task["kind"] == "multi-file" and len({e["file"] for e in task["inject"]}) < 2:
            problems.append("%s: a multi-file task changes one file" % tid)
        name = task["project"]
        if name not in originals:
            originals[name] = run_suite(source(name))
            failing = sorted(n for n, o in originals[name].items() if o not in GOOD)
            if failing:
                problems.append("%s: the original's suite fails: %s" % (name, failing[:5]))
        original = hidden_of(task, originals[name])
        if not original or any(o not in GOOD for o in original.values()):
            problems.append("%s: the original does not pass the hidden tests: %s" % (tid, original))
        with tempfile.TemporaryDirectory(prefix="quorum-validate-") as tmp:
            workspace = os.path.join(tmp, "workspace")
            try:
                prepare(task, workspace)
            except (ValueError, StopIteration, OSError, SyntaxError) as e:
                problems.append("%s: cannot prepare: %r" % (tid, e))
                continue
            if any(h.split("::")[0] == path for h in task["hidden"] for path in changed_files(task)):
                problems.append("%s: a hidden test is in a file the change touches" % tid)
            collected, ids = collect(workspace)
            if not collected:
                problems.append("%s: the workspace's suite does not collect" % tid)
            left = [n for n in ids if hidden_of(task, {n: "PASSED"})]
            if left:
                problems.append("%s: hidden tests are still in the workspace: %s" % (tid, left[:3]))
            failing = hidden_of(task, baseline(task))
            if not any(o not in GOOD for o in failing.values()):
                problems.append("%s: the injected state passes the hidden tests" % tid)
            reference = os.path.join(tmp, "reference")
            reference_tree(task, reference)
            result = verdict(task, reference)
            if not result["passed"]:
                problems.append("%s: the reference change fails: %s" % (tid, result))
    return problems


def changed_files(task):
    return sorted({e["file"] for e in task["inject"]})


def stats():
    for name in projects():
        root = source(name)
        tests = projects()[name]["tests"]
        code = test = 0
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        n = sum(1 for _ in fh)
                    rel = os.path.relpath(path, root)
                    if any(rel == t or rel.startswith(t + "/") for t in tests):
                        test += n
                    else:
                        code += n
        print("%s %s: %d lines of Python, %d of them tests" % (name, projects()[name]["version"], code + test, test))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, args = argv[0], argv[1:]
    tasks_file = os.environ.get("QUORUM_REPO_TASKS")
    if command == "fetch":
        for name in projects():
            log("%s: %s" % (name, source(name)))
    elif command == "prepare" and len(args) == 2:
        task = task_by_id(args[0], tasks_file)
        prepare(task, args[1])
        print(json.dumps({"workspace": os.path.abspath(args[1]), "files": changed_files(task)}))
    elif command == "verdict" and len(args) == 2:
        print(json.dumps(verdict(task_by_id(args[0], tasks_file), args[1])))
    elif command == "validate":
        tasks = load_tasks(tasks_file)
        chosen = [t for t in tasks if not args or t["task_id"] in args]
        ids = [t["task_id"] for t in tasks]
        problems = ["duplicate task ids"] if len(set(ids)) != len(ids) else []
        problems += validate(chosen)
        for p in problems:
            print(p)
        print("%d tasks, %d problems" % (len(chosen), len(problems)))
        return 1 if problems else 0
    elif command == "stats":
        stats()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
