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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("state") / "state.redb"
    model = ROOT / "models" / "smollm2-135m-instruct-q4_1.gguf"
    assert model.exists(), f"{model} is missing: run scripts/fetch-small-models.sh"
    proc = subprocess.Popen(
        [quorum_bin(), "serve", "--port", "0", "--model", f"all={model}", "--state", str(state)],
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


@pytest.fixture()
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)
