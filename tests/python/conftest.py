"""Starts the real quorum server (SmolLM2-135M for every role) for the client tests."""

import os
import pathlib
import subprocess
import time

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def quorum_bin() -> str:
    if os.environ.get("QUORUM_BIN"):
        return os.environ["QUORUM_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(pathlib.Path(target) / "release" / "quorum")


SERVICE_PY = """def parse_config(text):
    return {"verbose": "verbose" in text}


class Service:
    def run(self):
        return parse_config("")
"""

TEST_PY = """from app.service import parse_config


def test_verbose():
    assert parse_config("verbose")["verbose"]


def test_quiet():
    assert not parse_config("")["verbose"]
"""


def git(cwd, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, check=True, capture_output=True,
    )


def committed(root, files, message):
    """Writes `files` (path: text) under `root` and commits them as a new git repository."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", message)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A small git repository for the tools: one commit, then an unstaged change."""
    root = tmp_path_factory.mktemp("workspace")
    files = {
        "README.md": "# Fixture\n\nCall parse_config to read the config.\n",
        "conftest.py": "",
        "app/__init__.py": "",
        "app/service.py": SERVICE_PY,
        "tests/test_app.py": TEST_PY,
    }
    committed(root, files, "first")
    (root / "app/service.py").write_text(SERVICE_PY.replace('parse_config("")', 'parse_config("quiet")'))
    return root


@pytest.fixture(scope="session")
def roots(tmp_path_factory):
    """A directory of two more repositories (`alpha`, `beta`) the server may work on."""
    root = tmp_path_factory.mktemp("roots")
    for name in ["alpha", "beta"]:
        repo = root / name
        (repo / name).mkdir(parents=True)
        (repo / name / "__init__.py").write_text("")
        (repo / name / f"{name}_core.py").write_text(f"def {name}_value():\n    return '{name}'\n")
        git(repo, "init", "-q")
        git(repo, "add", ".")
        git(repo, "commit", "-qm", "first")
    (root / "not-a-repo").mkdir()
    return root


@pytest.fixture(scope="session")
def server(tmp_path_factory, workspace, roots):
    state_dir = tmp_path_factory.mktemp("state")
    state = state_dir / "state.redb"
    # One short round: the pipeline tests check the plumbing, not SmolLM's code.
    config = state_dir / "quorum.toml"
    config.write_text("[pipeline]\nmax_rounds = 1\nreplans = 0\ncandidates = 3\ncoder_max_tokens = 96\nmax_votes = 3\n")
    model = ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf"
    assert model.exists(), f"{model} is missing: run scripts/fetch-small-models.sh"
    proc = subprocess.Popen(
        [quorum_bin(), "--config", str(config), "serve", "--port", "0", "--model", f"all={model}", "--state", str(state), "--workspace", str(workspace), "--workspaces", str(roots)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, f"unexpected first line: {line!r}"
        url = line.split("listening on", 1)[1].strip()
        deadline = time.time() + 120
        while time.time() < deadline:
            if httpx.get(f"{url}/health").status_code == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("server did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def start_server(args, timeout=180):
    """Starts `quorum ... serve --port 0 ARGS`; returns the process and its URL once healthy."""
    proc = subprocess.Popen([quorum_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, f"unexpected first line: {line!r}"
    url = line.split("listening on", 1)[1].strip()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if httpx.get(f"{url}/health").status_code == 200:
            return proc, url
        time.sleep(0.2)
    proc.terminate()
    pytest.fail("server did not become ready")


@pytest.fixture(scope="session")
def tool_server(tmp_path_factory):
    """A server whose coder is the small profile's Qwen2.5-Coder-1.5B (Hermes tool calls),
    every other role on SmolLM2, and aliases for the model names agent clients send."""
    state_dir = tmp_path_factory.mktemp("tool-state")
    config = state_dir / "quorum.toml"
    config.write_text('[aliases]\n"claude-*" = "coder"\n"gpt-*" = "coder"\n')
    smollm = ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf"
    coder = ROOT / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert coder.exists(), f"{coder} is missing: run scripts/fetch-small-models.sh"
    proc, url = start_server(["--config", str(config), "serve", "--port", "0", "--model", f"all={smollm}",
                              "--model", f"coder={coder}", "--state", str(state_dir / "state.redb")])
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
