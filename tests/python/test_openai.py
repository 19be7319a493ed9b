"""quorum's OpenAI-compatible API, driven by the official `openai` Python SDK."""

import time

import httpx
import openai
import pytest

MESSAGES = [{"role": "user", "content": "Count from one to ten in words."}]


def test_models_lists_every_role_and_the_pipeline(client):
    ids = {m.id for m in client.models.list().data}
    # quorum@NAME: the pipeline on each repository under the server's workspace roots.
    assert ids == {"preprocessor", "planner", "coder", "voter", "reviewer", "quorum", "quorum@alpha", "quorum@beta"}


def test_chat_completion(client):
    r = client.chat.completions.create(model="coder", messages=MESSAGES, max_tokens=16, temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streamed_chat_concatenates_to_the_same_answer_and_ends_with_usage(client):
    whole = client.chat.completions.create(model="coder", messages=MESSAGES, max_tokens=24, temperature=0)
    stream = client.chat.completions.create(
        model="coder",
        messages=MESSAGES,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_n_returns_n_choices(client):
    r = client.chat.completions.create(
        model="voter", messages=MESSAGES, max_tokens=12, temperature=1.0, seed=7, n=2
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content for c in r.choices)
    assert 0 < r.usage.completion_tokens <= 24


def test_streamed_n_interleaves_choices(client):
    stream = client.chat.completions.create(
        model="voter", messages=MESSAGES, max_tokens=8, temperature=1.0, seed=3, n=2, stream=True
    )
    texts = {0: "", 1: ""}
    for chunk in stream:
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
    assert texts[0] and texts[1]


def test_completion_plain_and_streamed(client):
    r = client.completions.create(model="coder", prompt="def add(a, b):", max_tokens=16, temperature=0)
    assert r.object == "text_completion"
    assert r.choices[0].text
    assert r.usage.completion_tokens <= 16
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="coder", prompt="def add(a, b):", max_tokens=16, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == r.choices[0].text


def test_stop_sequences(client):
    whole = client.completions.create(model="coder", prompt="1, 2, 3,", max_tokens=16, temperature=0).choices[0]
    stop = whole.text.strip().split(",")[1].strip() if "," in whole.text else None
    if not stop:
        pytest.skip(f"model produced no list to cut: {whole.text!r}")
    cut = client.completions.create(model="coder", prompt="1, 2, 3,", max_tokens=16, temperature=0, stop=[stop]).choices[0]
    assert stop not in cut.text
    assert whole.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert e.value.status_code == 404
    assert e.value.body["code"] == "model_not_found"


def test_the_pipeline_model_does_not_take_plain_completions(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="quorum", prompt="def add(a, b):")
    assert "/v1/chat/completions" in e.value.body["message"]


def test_context_length_exceeded_is_400(client):
    long = "word " * 10000
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="coder", messages=[{"role": "user", "content": long}])
    assert e.value.body["code"] == "context_length_exceeded"
    assert "maximum context length" in e.value.body["message"]


def test_malformed_json_is_400_in_openai_shape(server):
    r = httpx.post(f"{server}/v1/chat/completions", content=b'{"model": "coder",', headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert "JSON" in err["message"]


def test_bad_parameters_are_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="coder", messages=MESSAGES, temperature=7)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="coder",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}],
        )


def running_sequences(server):
    text = httpx.get(f"{server}/metrics").text
    lines = [l for l in text.splitlines() if l.startswith("quorum_sequences_running{")]
    assert len(lines) == 1, text
    return int(lines[0].rsplit(" ", 1)[1])


def test_metrics_are_prometheus_text(server, client):
    client.chat.completions.create(model="coder", messages=MESSAGES, max_tokens=4)
    text = httpx.get(f"{server}/metrics").text
    assert "# TYPE quorum_generated_tokens_total counter" in text
    generated = [l for l in text.splitlines() if l.startswith("quorum_generated_tokens_total{")]
    assert int(generated[0].rsplit(" ", 1)[1]) >= 4
    # Where the steps' time went, in seconds.
    for name in ("quorum_decode_seconds_total", "quorum_sampling_seconds_total"):
        assert f"# TYPE {name} counter" in text
        assert sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{")) > 0, name
    assert "quorum_drafting_seconds_total{" in text
    assert "quorum_device_wait_seconds_total{" in text


def metric(server, name):
    text = httpx.get(f"{server}/metrics").text
    return sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{"))


def test_speculation_is_reported_in_usage_and_metrics(server, client):
    # A count the model goes on repeating: its last 12 tokens occurred before, so drafts come.
    nums = ", ".join(str(i) for i in range(1, 31))
    before = metric(server, "quorum_draft_tokens_total")
    r = client.completions.create(model="coder", prompt=f"{nums}\n{nums}\n1, 2, 3,", max_tokens=48, temperature=0)
    spec = r.usage.model_extra["speculation"]
    assert 0 < spec["accepted_tokens"] <= spec["drafted_tokens"], spec
    assert spec["acceptance_rate"] == pytest.approx(spec["accepted_tokens"] / spec["drafted_tokens"], rel=1e-3)
    drafted = metric(server, "quorum_draft_tokens_total")
    assert drafted - before >= spec["drafted_tokens"]
    assert metric(server, "quorum_draft_accepted_total") + metric(server, "quorum_draft_rejected_total") == drafted


def test_json_response_format_is_enforced(client):
    r = client.chat.completions.create(
        model="voter",
        messages=[{"role": "user", "content": "Is water wet? Answer in JSON."}],
        max_tokens=40,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "verdict",
                "schema": {
                    "type": "object",
                    "properties": {"verdict": {"type": "boolean"}},
                    "required": ["verdict"],
                },
            },
        },
    )
    import json

    assert isinstance(json.loads(r.choices[0].message.content)["verdict"], bool)


def test_disconnect_mid_stream_stops_generation(server, client):
    body = {
        "model": "coder",
        "messages": [{"role": "user", "content": "Write a very long essay about the ocean."}],
        "max_tokens": 3000,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as r:
        lines = r.iter_lines()
        seen = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: ") for line in seen)
        assert running_sequences(server) == 1
    # The client is gone: the sequence is freed within a step or two, as /metrics shows.
    deadline = time.time() + 10
    while running_sequences(server) != 0:
        assert time.time() < deadline, "generation kept running after the client left"
        time.sleep(0.05)
    r = client.chat.completions.create(model="coder", messages=MESSAGES, max_tokens=4)
    assert r.choices[0].message.content
