"""`model: "quorum"` through the official `openai` SDK: the pipeline runs on the fixture
workspace, progress streams as `reasoning_content`, the answer as `content`; a chat
front-end's housekeeping requests are answered by one model. Speech and images: test_media.py."""

import httpx
import openai
import pytest

TASK = "Make parse_config in app/service.py treat 'VERBOSE' like 'verbose'."
STAGES = ["▸ preprocess", "▸ plan", "▸ code", "▸ vote", "▸ review", "▸ output"]


def reasoning_of(obj):
    return getattr(obj, "reasoning_content", None) or (obj.model_extra or {}).get("reasoning_content")


def assert_stages_in_order(reasoning):
    positions = [reasoning.find(stage) for stage in STAGES]
    assert all(p >= 0 for p in positions), reasoning
    assert positions == sorted(positions), reasoning


def test_the_pipeline_streams_progress_as_reasoning_and_the_answer_as_content(client, server):
    before = len(httpx.get(f"{server}/api/tasks").json()["tasks"])
    stream = client.chat.completions.create(
        model="quorum", messages=[{"role": "user", "content": TASK}], stream=True
    )
    reasoning, content, finishes = "", "", []
    for chunk in stream:
        delta = chunk.choices[0].delta
        assert chunk.model == "quorum"
        reasoning += reasoning_of(delta) or ""
        content += delta.content or ""
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert_stages_in_order(reasoning)
    assert "candidate 1" in reasoning and "review" in reasoning
    assert "Plan:" in content or "The pipeline failed" in content, content
    assert finishes == ["stop"]
    # The run is a task like any other, with every stage saved.
    tasks = httpx.get(f"{server}/api/tasks").json()["tasks"]
    assert len(tasks) == before + 1
    task = httpx.get(f"{server}/api/task/{tasks[0]['id']}").json()
    assert task["input"]["text"] == TASK
    assert set(task["outputs"]) == {"preprocess", "plan", "code", "vote", "review", "output"}


def test_the_pipeline_answers_without_streaming_too(client):
    reply = client.chat.completions.create(model="quorum", messages=[{"role": "user", "content": TASK}])
    message = reply.choices[0].message
    assert_stages_in_order(reasoning_of(message))
    assert message.content


def test_front_end_housekeeping_does_not_start_the_pipeline(client, server):
    before = len(httpx.get(f"{server}/api/tasks").json()["tasks"])
    reply = client.chat.completions.create(
        model="quorum",
        max_tokens=12,
        messages=[
            {"role": "user", "content": TASK},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history."},
        ],
    )
    assert reply.choices[0].message.content
    assert reasoning_of(reply.choices[0].message) is None
    assert len(httpx.get(f"{server}/api/tasks").json()["tasks"]) == before
