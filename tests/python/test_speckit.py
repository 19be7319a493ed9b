"""spec-kit on quorum, on the small profile: the real `specify` CLI scaffolds a small
Python tool offline, quorum's CLI runs specify, clarify, plan, tasks, implement (one
task) and analyze on it; a chat `/speckit.specify` goes through the official `openai`
SDK, the workflow route takes a command, and the MCP server lists the commands as prompts
to the official `mcp` SDK. Each command's time is printed (the README quotes them)."""

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from conftest import git, quorum_bin, start_server

FEATURE = "Add a --json flag to the wordcount CLI that prints the counts as a JSON object instead of the plain line"

WORDCOUNT = '''"""Counts the words, lines and characters of a text file."""
import argparse
import sys


def count(text):
    """The number of lines, words and characters of text."""
    return {"lines": text.count("\\n"), "words": len(text.split()), "chars": len(text)}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Count lines, words and characters.")
    parser.add_argument("path", help="the file to count")
    args = parser.parse_args(argv)
    with open(args.path, encoding="utf-8") as f:
        counts = count(f.read())
    print(f"{counts['lines']} {counts['words']} {counts['chars']} {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

TESTS = '''import wordcount


def test_count():
    assert wordcount.count("a b\\nc\\n") == {"lines": 2, "words": 3, "chars": 6}


def test_main_prints_counts(tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text("one two\\n")
    assert wordcount.main([str(path)]) == 0
    assert capsys.readouterr().out == f"1 2 8 {path}\\n"
'''

TIMES = {}


def specify_cli():
    found = shutil.which("specify") or str(pathlib.Path(sys.executable).parent / "specify")
    assert os.path.exists(found), "spec-kit's CLI is missing: pip install specify-cli (tests/python/requirements.txt)"
    return found


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The tool, committed, then `quorum spec init` with the real `specify`."""
    root = tmp_path_factory.mktemp("speckit") / "wordcount"
    (root / "tests").mkdir(parents=True)
    (root / "wordcount.py").write_text(WORDCOUNT)
    (root / "tests" / "test_wordcount.py").write_text(TESTS)
    (root / "README.md").write_text("# wordcount\n\nCounts lines, words and characters: `python wordcount.py FILE`.\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    env = {**os.environ, "QUORUM_SPECIFY": specify_cli()}
    done = subprocess.run([quorum_bin(), "spec", "init", "--workspace", str(root)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (root / ".quorum/commands/speckit.specify.md").exists()
    git(root, "add", ".")
    git(root, "commit", "-qm", "spec-kit")
    return root


def spec(repo, command, arguments="", options=None):
    args = [quorum_bin(), "spec", command, arguments, "--workspace", str(repo), "--state", str(repo.parent / "state.redb")]
    if options:
        args += ["--options", json.dumps(options)]
    started = time.time()
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    TIMES[command] = round(time.time() - started, 1)
    print(f"quorum spec {command}: {TIMES[command]} s, exit {done.returncode}\n{done.stdout}")
    return done


def paths(repo):
    """What spec-kit's own script says the feature's files are."""
    out = subprocess.run(["bash", ".specify/scripts/bash/check-prerequisites.sh", "--json", "--paths-only"],
                         cwd=repo, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def placeholders(text):
    """Bracketed placeholders outside inline code, links, checkboxes and task markers."""
    found = set()
    for i, span in enumerate(text.split("`")):
        if i % 2:
            continue
        for m in re.finditer(r"\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\](?!\()", span.replace("\n", " ")):
            inner = m.group(1)
            if inner in ("", " ", "x", "X", "P", "P?", "ID", "Story") or re.fullmatch(r"US\d+", inner):
                continue
            if re.search(r"[A-Za-z#]", inner):
                found.add(m.group(0))
    return found


def assert_filled(doc, template, clarifications=3):
    left = placeholders(doc) & placeholders(template)
    assert not left, f"placeholders left: {left}"
    for literal in ["[FEATURE NAME]", "[###-", "$ARGUMENTS", "[DATE]"]:
        assert literal not in doc
    assert doc.count("NEEDS CLARIFICATION") <= clarifications
    for heading in re.findall(r"^#+ (.*?) \*\(mandatory\)\*", template, re.M):
        assert heading in doc, f"mandatory section {heading!r} is missing"


def tree(repo):
    """Every file's content hash, .git aside."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.relative_to(repo).parts}


@pytest.fixture(scope="module")
def documents(repo):
    """specify, clarify, plan and tasks, one after the other."""
    results = {}
    results["specify"] = spec(repo, "specify", FEATURE)
    results["clarify"] = spec(repo, "clarify")
    results["plan"] = spec(repo, "plan")
    results["tasks"] = spec(repo, "tasks")
    return results


def test_specify_writes_a_filled_spec_where_the_scripts_look(repo, documents):
    assert documents["specify"].returncode == 0, documents["specify"].stdout + documents["specify"].stderr
    feature = json.loads((repo / ".specify/feature.json").read_text())["feature_directory"]
    assert re.fullmatch(r"specs/001-[a-z0-9-]+", feature), feature
    where = paths(repo)
    assert pathlib.Path(where["FEATURE_DIR"]) == repo / feature
    spec_md = pathlib.Path(where["FEATURE_SPEC"]).read_text()
    assert_filled(spec_md, (repo / ".specify/templates/spec-template.md").read_text())
    assert "json" in spec_md.lower()


def test_clarify_records_questions_and_answers(repo, documents):
    assert documents["clarify"].returncode == 0, documents["clarify"].stdout + documents["clarify"].stderr
    spec_md = pathlib.Path(paths(repo)["FEATURE_SPEC"]).read_text()
    assert "## Clarifications" in spec_md
    assert re.search(r"^- Q: .+ → A: .+", spec_md, re.M), spec_md
    assert_filled(spec_md, (repo / ".specify/templates/spec-template.md").read_text())


def test_plan_and_tasks_fill_their_templates(repo, documents):
    for command in ["plan", "tasks"]:
        assert documents[command].returncode == 0, documents[command].stdout + documents[command].stderr
    where = paths(repo)
    plan = pathlib.Path(where["IMPL_PLAN"]).read_text()
    assert_filled(plan, (repo / ".specify/templates/plan-template.md").read_text())
    tasks = pathlib.Path(where["TASKS"]).read_text()
    assert_filled(tasks, (repo / ".specify/templates/tasks-template.md").read_text())
    assert re.search(r"^- \[ \] T001 ", tasks, re.M), tasks


def test_analyze_changes_no_file(repo, documents):
    before = tree(repo)
    done = spec(repo, "analyze")
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(done.stdout.strip().splitlines()) > 1, "no report"
    assert tree(repo) == before


def test_implement_does_the_first_task_and_ticks_it(repo, documents):
    tasks_file = pathlib.Path(paths(repo)["TASKS"])
    first = re.search(r"^- \[ \] (T001 .*)$", tasks_file.read_text(), re.M).group(1)
    done = spec(repo, "implement", options={"tasks": 1})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"- [X] {first}" in tasks_file.read_text()
    assert re.search(r"^- \[ \] T002 ", tasks_file.read_text(), re.M) or "T002" not in tasks_file.read_text()
    # A task may create its module: new files count as well as changed ones.
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                            capture_output=True, text=True).stdout
    changed = [line[3:] for line in status.splitlines()]
    assert any(name.endswith(".py") for name in changed), f"{first}\n{status}\n{done.stdout}"
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout


def test_implement_stops_at_the_first_failure_and_a_rerun_ticks_what_was_applied(repo, documents):
    tasks_file = pathlib.Path(paths(repo)["TASKS"])
    if "- [X] T001 " not in tasks_file.read_text():
        pytest.skip("needs the first task done (test_implement_does_the_first_task_and_ticks_it)")
    # A plan-only pipeline task applies nothing: implement must stop there, unticked.
    before = tasks_file.read_text()
    done = spec(repo, "implement", options={"plan_only": True, "tasks": 1})
    assert done.returncode == 1
    assert "T002 failed" in done.stdout and "left unticked" in done.stdout, done.stdout
    assert tasks_file.read_text() == before
    # The records know T001 was applied: unticked by hand, it is ticked again, not redone.
    tasks_file.write_text(before.replace("- [X] T001 ", "- [ ] T001 "))
    diff = subprocess.run(["git", "diff", "--", "*.py"], cwd=repo, capture_output=True, text=True).stdout
    done = spec(repo, "implement", options={"tasks": 1})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "- [X] T001 " in tasks_file.read_text()
    assert "applied by task" in done.stderr, done.stderr
    assert subprocess.run(["git", "diff", "--", "*.py"], cwd=repo, capture_output=True, text=True).stdout == diff


def test_init_without_specify_says_how_to_install_it(tmp_path):
    git(tmp_path, "init", "-q")
    env = {**os.environ, "QUORUM_SPECIFY": str(tmp_path / "no-such-specify")}
    done = subprocess.run([quorum_bin(), "spec", "init", "--workspace", str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install specify-cli" in done.stderr and "was not found" in done.stderr, done.stderr
    done = subprocess.run([quorum_bin(), "spec", "plan", "--workspace", str(tmp_path), "--state", str(tmp_path / "s.redb")],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "quorum spec init" in done.stderr, done.stderr


def test_mcp_lists_the_commands_as_prompts(repo):
    import asyncio

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    async def talk():
        params = StdioServerParameters(command=quorum_bin(), args=["mcp", "--workspace", str(repo)])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_prompts()
                got = await session.get_prompt("speckit.plan", {"arguments": "use only the standard library"})
                return listed, got

    listed, got = asyncio.run(talk())
    names = {p.name for p in listed.prompts}
    assert {"speckit.specify", "speckit.plan", "speckit.tasks", "speckit.implement", "speckit.analyze"} <= names
    plan = next(p for p in listed.prompts if p.name == "speckit.plan")
    assert plan.description and [a.name for a in plan.arguments] == ["arguments"]
    text = got.messages[0].content.text
    assert "use only the standard library" in text and "$ARGUMENTS" not in text


def test_chat_and_workflow_run_commands(repo, documents):
    from openai import OpenAI

    proc, url = start_server(["serve", "--port", "0", "--workspace", str(repo), "--state", str(repo.parent / "serve.redb")])
    try:
        # The workflow route streams a read-only command's progress and report.
        events = []
        with httpx.stream("POST", f"{url}/api/workflow", json={"task": "/speckit.analyze"}, timeout=600) as r:
            assert r.status_code == 200
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        kinds = [k for k, _ in events]
        assert kinds[0] == "speckit" and "progress" in kinds and kinds[-1] == "report", kinds
        assert events[-1][1]["command"] == "analyze" and events[-1][1]["files"] == []
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        started = time.time()
        reasoning, content = [], []
        stream = client.chat.completions.create(
            model="quorum", stream=True,
            messages=[{"role": "user", "content": "/speckit.specify Add a --words-only flag that prints only the word count"}],
        )
        for chunk in stream:
            delta = chunk.choices[0].delta
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
            content.append(delta.content or "")
        TIMES["chat specify"] = round(time.time() - started, 1)
        answer = "".join(content)
        assert answer.startswith("/speckit.specify: done"), answer
        assert "writing" in "".join(reasoning)
        assert re.search(r"wrote specs/002-[a-z0-9-]+/spec\.md", answer), answer
        made = json.loads((repo / ".specify/feature.json").read_text())["feature_directory"]
        assert "words" in (repo / made / "spec.md").read_text().lower()

        # Bad input answers in the interface's own format.
        with pytest.raises(Exception) as refused:
            client.chat.completions.create(model="quorum", messages=[{"role": "user", "content": "/speckit.nosuch x"}])
        assert getattr(refused.value, "status_code", None) == 404
        assert "no spec-kit command `nosuch`" in str(refused.value)

    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"spec-kit command times (s): {TIMES}")
