"""What selection can reach: N coder samples per task, each run against the hidden test and
against the docstring's examples, for one or more coder instructions (the same seeds for
each). An answer is right when it gets the examples right and passes the hidden test, as in
`quorum eval`. Per instruction:

- the samples' pass rate: an estimate of `quorum eval --mode single` (one sample each),
  over N times as many samples as one `single` run has;
- the oracle of N: tasks where some sample passes;
- a random choice among the samples that pass the examples: the pass rate that choosing by
  the examples alone, with a coin flip between the survivors, is expected to reach;
- the issue's targets for a pipeline with these candidates: the samples' pass rate + 10
  points, and 70% of the way from it to the oracle.

Usage: python evals/samples.py QUORUM_BINARY MODEL.gguf OUT.json
           [--instructions plain,restate,no-extra] [--n 5] [--temperature 0.5] [--start 0]
       python evals/samples.py --report OUT.json [OUT2.json ...]

Candidates run as the eval's sandbox runs them (src/eval/sandbox.rs): a temporary
directory, `python3 -I`, an empty environment, CPU, memory and file-size limits, a timeout
that kills the process group, and no network where `unshare -rn` works."""

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import tempfile
import time

import httpx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benches"))
import compare_llama_cpp  # noqa: E402  (starts quorum for the bench scripts too)

TASKS = pathlib.Path(__file__).resolve().parent / "tasks.jsonl"
# `plain` is the instruction of src/eval/direct.rs (`single` and `vote`).
INSTRUCTIONS = {
    "plain": "Complete this Python function. Answer with the whole function in one ```python code block, nothing else.",
    "restate": "Complete this Python function. Right after the docstring, first restate each rule the docstring "
    "states as a short `#` comment, in order, adding no rule it does not state; then write the code that follows "
    "every one of them. Answer with the whole function in one ```python code block, nothing else.",
    "no-extra": "Complete this Python function. Follow every rule its docstring states, edge cases included, and add "
    "no checks, errors or rules it does not state. Answer with the whole function in one ```python code block, "
    "nothing else.",
}
TIMEOUT = 10


def isolated():
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


NETLESS = ["unshare", "-rn"] if isolated() else []


def limits():
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT + 1, TIMEOUT + 1))
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))


def runs_clean(source):
    with tempfile.TemporaryDirectory() as d:
        pathlib.Path(d, "candidate.py").write_text(source)
        child = subprocess.Popen(NETLESS + ["python3", "-I", "candidate.py"], cwd=d, env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=limits, start_new_session=True)
        try:
            return child.wait(timeout=TIMEOUT) == 0
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return False


def program(task, answer):
    """As src/eval/mod.rs builds it: the whole function if the answer wrote one (the prompt's
    imports kept), else the prompt followed by the answer as the body."""
    parts = answer.split("```")
    code = parts[1] if len(parts) > 1 else answer
    code = code.removeprefix("python").lstrip("\n")
    if f"def {task['entry_point']}(" in code:
        imports = [l for l in task["prompt"].splitlines() if l.startswith(("import ", "from "))]
        return "\n".join(imports) + "\n\n" + code
    return task["prompt"] + code


def examples_check(task):
    docstring = json.dumps(task["prompt"].split('"""')[1])
    return f"""
import doctest as _doctest
def check(candidate):
    test = _doctest.DocTestParser().get_doctest({docstring}, dict(candidate.__globals__), 'examples', None, 0)
    runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda _: None)
    assert test.examples and runner.failures == 0
"""


def judge(task, answer):
    code = program(task, answer)
    call = f"\n\ncheck({task['entry_point']})\n"
    return {"hidden": runs_clean(code + "\n\n" + task["test"] + call), "examples": runs_clean(code + "\n" + examples_check(task) + call)}


def sample(url, task, seed, instruction, n, temperature):
    body = {"model": "coder", "messages": [{"role": "user", "content": f"{instruction}\n\n```python\n{task['prompt']}```"}],
            "n": n, "temperature": temperature, "seed": seed, "max_tokens": 768}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=1800)
    r.raise_for_status()
    reply = r.json()
    return [c["message"]["content"] for c in reply["choices"]], reply["usage"]["completion_tokens"]


def collect(args):
    tasks = [json.loads(l) for l in TASKS.read_text().splitlines() if l.strip()]
    names = args.instructions.split(",")
    out = pathlib.Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    server, url = compare_llama_cpp.start_quorum(args.binary, args.model, 18193)
    try:
        # The instructions' requests for one task go together: one batch, the same seed.
        with cf.ThreadPoolExecutor(len(names)) as pool:
            for i, task in enumerate(tasks[args.start:], args.start):
                started = time.perf_counter()
                asked = {name: pool.submit(sample, url, task, 100 + i, INSTRUCTIONS[name], args.n, args.temperature) for name in names}
                row = results.setdefault(task["task_id"], {})
                for name, reply in asked.items():
                    answers, tokens = reply.result()
                    row[name] = {"tokens": tokens, "samples": [{"answer": a, **judge(task, a)} for a in answers]}
                out.write_text(json.dumps(results, indent=1))
                summary = " ".join(f"{name}: {sum(map(right, row[name]['samples']))}/{args.n}" for name in names)
                print(f"{task['task_id']} {time.perf_counter() - started:.0f} s  {summary}", flush=True)
    finally:
        server.terminate()
    report([out])


def report(paths):
    results = {}
    for path in paths:
        for task_id, row in json.loads(pathlib.Path(path).read_text()).items():
            results.setdefault(task_id, {}).update(row)
    names = sorted({name for row in results.values() for name in row})
    common = [row for row in results.values() if all(name in row for name in names)]
    tables = [("every task sampled", list(results.values()))]
    if len(common) < len(results):
        tables.append(("the tasks every instruction was sampled on", common))
    for title, rows in tables:
        print(f"\n{title}:\n")
        print("| instruction | tasks | samples' pass rate | oracle | random among example-passers | +10 target | 70% target |")
        print("|---|---|---|---|---|---|---|")
        for name in names:
            print(line(name, [row[name]["samples"] for row in rows if name in row]))


def right(s):
    """The eval's verdict (src/eval/mod.rs): the docstring's examples and the hidden test."""
    return s["examples"] and s["hidden"]


def line(name, rows):
    rate = sum(sum(map(right, r)) / len(r) for r in rows) / len(rows)
    oracle = sum(any(map(right, r)) for r in rows) / len(rows)
    chosen = 0.0
    for r in rows:
        survivors = [right(s) for s in r if s["examples"]]
        chosen += sum(survivors) / len(survivors) if survivors else 0.0
    chosen /= len(rows)
    pct = lambda x: f"{100 * x:.1f}%"
    return f"| {name} | {len(rows)} | {pct(rate)} | {pct(oracle)} | {pct(chosen)} | {pct(rate + 0.1)} | {pct(rate + 0.7 * (oracle - rate))} |"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        return report(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--instructions", default="plain")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--start", type=int, default=0)
    collect(p.parse_args())


if __name__ == "__main__":
    main()
