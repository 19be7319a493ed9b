"""Validates evals/tasks.jsonl: each canonical solution passes its hidden test and its doctests; wrong candidates fail."""
import ast, doctest, json, re, sys

PATH = sys.argv[1] if len(sys.argv) > 1 else __import__("os").path.join(__import__("os").path.dirname(__file__), "tasks.jsonl")
KEYS = {"task_id", "prompt", "entry_point", "test", "canonical_solution"}


def load():
    with open(PATH, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l.strip()]
    return [json.loads(l) for l in lines]


def build(prompt, body):
    g = {"__name__": "task_module"}
    exec(compile(prompt + body, "<task>", "exec"), g)
    return g


def passes(task, func):
    g = {"__name__": "test_module"}
    exec(compile(task["test"], "<test>", "exec"), g)
    try:
        g["check"](func)
        return True
    except Exception:
        return False


def imported_modules(src):
    mods = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def wrong_candidates():
    def returns_none(*args, **kwargs):
        return None

    def echoes_first(*args, **kwargs):
        return args[0] if args else None

    def returns_zero(*args, **kwargs):
        return 0

    return {"returns_none": returns_none, "echoes_first": echoes_first, "returns_zero": returns_zero}


def validate(i, task):
    problems = []
    if set(task) != KEYS:
        problems.append("keys %s" % sorted(task))
    if task["task_id"] != "quorum/%d" % i:
        problems.append("task_id %r" % task["task_id"])
    prompt, ep = task["prompt"], task["entry_point"]
    if not re.search(r"^def %s\(" % re.escape(ep), prompt, re.M):
        problems.append("entry point not defined in prompt")
    if not prompt.endswith('    """\n'):
        problems.append("prompt does not end with closing docstring line")
    bad = imported_modules(prompt + task["canonical_solution"] + task["test"]) - set(sys.stdlib_module_names)
    if bad:
        problems.append("non-stdlib imports %s" % bad)
    # hidden test shape
    tree = ast.parse(task["test"])
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    n_asserts = sum(isinstance(n, ast.Assert) for n in ast.walk(tree))
    if len(checks) != 1 or not 5 <= n_asserts <= 10:
        problems.append("check() missing or %d asserts" % n_asserts)
    # (1) canonical passes hidden tests
    g = build(prompt, task["canonical_solution"])
    func = g[ep]
    if not passes(task, func):
        problems.append("canonical FAILS hidden tests")
    # (2) doctests in prompt pass against canonical
    # parse the docstring itself (as doctest does), not the raw prompt text
    examples = doctest.DocTestParser().get_examples(func.__doc__ or "")
    if not 2 <= len(examples) <= 3:
        problems.append("%d doctest examples" % len(examples))
    for ex in examples:  # hidden tests must differ from visible examples
        call = ex.source.strip()
        if call.startswith(ep + "(") and call[len(ep):] in task["test"].replace("candidate", ""):
            args = call[len(ep):]
            if ("candidate" + args) in task["test"]:
                problems.append("hidden test repeats visible example %s" % call)
    dt = doctest.DocTest(examples, dict(g), ep, None, 0, None)
    runner = doctest.DocTestRunner(verbose=False, optionflags=0)
    res = runner.run(dt, out=lambda s: problems.append("doctest: " + s.strip()[:300]))
    if res.failed:
        problems.append("%d/%d doctests failed" % (res.failed, res.attempted))
    # (3) deliberately wrong candidates must fail
    for name, wrong in wrong_candidates().items():
        if passes(task, wrong):
            problems.append("wrong candidate %s PASSES check" % name)
    return problems, len(examples), n_asserts


def main():
    tasks = load()
    ok = 0
    if len(tasks) != 40:
        print("expected 40 tasks, found %d" % len(tasks))
    ids = [t["task_id"] for t in tasks]
    if len(set(ids)) != len(ids):
        print("duplicate task ids")
    for i, task in enumerate(tasks):
        problems, n_ex, n_as = validate(i, task)
        status = "PASS" if not problems else "FAIL"
        ok += not problems
        print("%-10s %-22s %s  doctests=%d asserts=%d" % (task["task_id"], task["entry_point"], status, n_ex, n_as))
        for p in problems:
            print("    - " + p)
    print("\n%d/%d tasks pass (canonical+hidden tests, canonical+doctests, wrong candidates rejected)" % (ok, len(tasks)))
    return 0 if ok == len(tasks) == 40 else 1


if __name__ == "__main__":
    sys.exit(main())
