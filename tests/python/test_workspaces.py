"""Many workspaces behind one server: the `roots` fixture's repositories named by the
workflow's `workspace`, the `X-Quorum-Workspace` header, a `quorum@NAME` model and an MCP
client's roots; anything outside the roots refused. And the models found from any
directory: the Hugging Face cache as the models location."""

import json
import os
import pathlib
import subprocess
import time

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
import mcp_types

from conftest import ROOT, quorum_bin

PLAN_ONLY = {"plan_only": True}
HEADER = "X-Quorum-Workspace"


def files_of(server, headers=None):
    res = httpx.post(f"{server}/api/tools/analyze_codebase", json={"depth": 3}, headers=headers or {}, timeout=60)
    return res, json.dumps(res.json())


def test_the_header_picks_a_repository_under_the_roots(server, roots):
    res, text = files_of(server, {HEADER: "beta"})
    assert res.status_code == 200, text
    assert "beta_core.py" in text and "alpha_core.py" not in text
    res, text = files_of(server, {HEADER: str(roots / "alpha")})
    assert "alpha_core.py" in text and "beta_core.py" not in text
    # Without the header: the default workspace (the conftest fixture).
    res, text = files_of(server)
    assert "service.py" in text and "alpha_core.py" not in text


@pytest.mark.parametrize("name", ["/", "/etc", "../..", "alpha/../../", str(ROOT)])
def test_anything_outside_the_roots_is_refused(server, name):
    res, text = files_of(server, {HEADER: name})
    assert res.status_code == 403, text
    assert res.json()["error"]["code"] == "refused"
    assert "outside this server's workspaces" in res.json()["error"]["message"]


def test_an_unknown_name_is_404(server):
    res, text = files_of(server, {HEADER: "gamma"})
    assert res.status_code == 404, text


def wait_finished(server, task_id, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = httpx.get(f"{server}/api/task/{task_id}").json()
        if task["status"] in ("succeeded", "failed", "cancelled"):
            return task
        time.sleep(0.5)
    pytest.fail(f"task {task_id} did not finish")


def workflow(server, body, headers=None):
    with httpx.stream("POST", f"{server}/api/workflow", json=body, headers=headers or {}, timeout=300) as res:
        if res.status_code != 200:
            res.read()
            return res, None
        for line in res.iter_lines():
            if line.startswith("data:"):
                return res, json.loads(line[5:])["id"]
    return res, None


def test_the_workflow_runs_on_the_workspace_it_names_and_keeps_it(server, roots):
    res, task_id = workflow(server, {"task": "Make alpha_value return 'ALPHA'.", "workspace": "alpha", "options": PLAN_ONLY})
    assert task_id, res
    task = wait_finished(server, task_id)
    assert task["input"]["workspace"] == str((roots / "alpha").resolve())
    # The planner saw alpha's code, not the default workspace's.
    context = json.dumps(task["outputs"]["plan"])
    assert "alpha_core.py" in context and "service.py" not in context
    # The header does the same.
    res, task_id = workflow(server, {"task": "Make beta_value return 'BETA'.", "options": PLAN_ONLY}, {HEADER: "beta"})
    task = wait_finished(server, task_id)
    assert task["input"]["workspace"] == str((roots / "beta").resolve())


def test_the_workflow_refuses_a_workspace_outside_the_roots(server, roots):
    res, task_id = workflow(server, {"task": "x", "workspace": str(roots.parent)})
    assert res.status_code == 403 and task_id is None


def test_a_quorum_at_name_model_runs_the_pipeline_there(client, server, roots):
    reply = client.chat.completions.create(
        model="quorum@beta",
        messages=[{"role": "user", "content": "Make beta_value in beta/beta_core.py return 'BETA'."}],
        extra_body={"options": PLAN_ONLY},
    )
    assert reply.model == "quorum@beta"
    task_id = reply.model_extra["quorum_task"]
    task = httpx.get(f"{server}/api/task/{task_id}").json()
    assert task["input"]["workspace"] == str((roots / "beta").resolve())
    # The plain model with the header, through the SDK's own header option.
    reply = client.chat.completions.create(
        model="quorum",
        messages=[{"role": "user", "content": "Make alpha_value in alpha/alpha_core.py return 'A'."}],
        extra_body={"options": PLAN_ONLY},
        extra_headers={HEADER: "alpha"},
    )
    task = httpx.get(f"{server}/api/task/{reply.model_extra['quorum_task']}").json()
    assert task["input"]["workspace"] == str((roots / "alpha").resolve())


def roots_callback(*paths):
    async def callback(context):
        return mcp_types.ListRootsResult(roots=[mcp_types.Root(uri=pathlib.Path(p).resolve().as_uri()) for p in paths])

    return callback


async def analyze_over_mcp(read, write, callback):
    async with ClientSession(read, write, list_roots_callback=callback) as session:
        await session.initialize()
        result = await session.call_tool("analyze_codebase", {"depth": 3})
        return result.is_error, json.dumps(result.structured_content) if not result.is_error else result.content[0].text


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_an_mcp_client_works_on_its_declared_root(server, roots, workspace):
    async with streamable_http_client(f"{server}/mcp") as (read, write):
        is_error, text = await analyze_over_mcp(read, write, roots_callback(roots / "alpha"))
    assert not is_error, text
    assert "alpha_core.py" in text and "service.py" not in text
    # The first root that is a workspace wins; an outside one before it is skipped.
    async with streamable_http_client(f"{server}/mcp") as (read, write):
        is_error, text = await analyze_over_mcp(read, write, roots_callback("/etc", roots / "beta"))
    assert not is_error and "beta_core.py" in text, text
    async with streamable_http_client(f"{server}/mcp") as (read, write):
        is_error, text = await analyze_over_mcp(read, write, roots_callback(roots.parent))
    assert is_error and "none of the client's roots" in text, text
    # Over stdio, with the roots given to `quorum mcp`.
    params = StdioServerParameters(
        command=quorum_bin(), args=["mcp", "--workspace", str(workspace), "--workspaces", str(roots)], env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write):
        is_error, text = await analyze_over_mcp(read, write, roots_callback(roots / "beta"))
    assert not is_error and "beta_core.py" in text, text


def test_models_are_found_in_the_hugging_face_cache_from_any_directory(tmp_path):
    """A hub model that `hf download` (or any tool) put in the Hugging Face cache is served
    from there: no `models/` directory, started outside the checkout."""
    model = (ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf").resolve()
    snapshot = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    (snapshot / "smollm2-135m-instruct-q4_1.gguf").symlink_to(model)
    empty = tmp_path / "models"
    empty.mkdir()
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"))
    spec = "all=hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_1.gguf"
    proc = subprocess.Popen(
        [quorum_bin(), "serve", "--port", "0", "--models-dir", str(empty), "--model", spec,
         "--state", str(tmp_path / "s.redb"), "--workspace", str(tmp_path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line
        url = line.split("listening on", 1)[1].strip()
        deadline = time.time() + 120
        while time.time() < deadline and httpx.get(f"{url}/health", timeout=30).status_code != 200:
            time.sleep(0.2)
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["status"] == "ok", health
        reply = httpx.post(f"{url}/v1/completions", json={"model": "coder", "prompt": "def add(a, b):", "max_tokens": 4}, timeout=120)
        assert reply.status_code == 200 and reply.json()["choices"][0]["text"], reply.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # Without the cache the same command names what is missing and where it looked.
    out = subprocess.run(
        [quorum_bin(), "serve", "--port", "0", "--models-dir", str(empty), "--model", spec,
         "--state", str(tmp_path / "s2.redb"), "--workspace", str(tmp_path)],
        cwd=tmp_path, env=dict(env, HF_HUB_CACHE=str(tmp_path / "nowhere")), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert "not found" in out.stderr and "Hugging Face cache" in out.stderr, out.stderr
