"""The coder stage's shape on real prompts: one n=5 request per eval task (the prompt
`quorum eval --mode vote` sends, fixed seeds), against one quorum binary. Prints each
request's wall time, tokens, and how many tokens were sampled from a sibling's row (the
deferred fork), then the totals. Run it with two binaries to compare them (RESULTS.md).

Usage: python benches/fork_share.py QUORUM_BINARY MODEL.gguf [TASKS] [TEMPERATURE]"""

import json
import pathlib
import sys
import time

import httpx

import compare_llama_cpp as c

# The instruction of src/eval/direct.rs, so that the prompts are the eval's.
INSTRUCTION = "Complete this Python function. Answer with the whole function in one ```python code block, nothing else."
TASKS = pathlib.Path(__file__).resolve().parent.parent / "evals" / "tasks.jsonl"


def main():
    binary, model = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    temperature = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
    tasks = [json.loads(line) for line in TASKS.read_text().splitlines() if line.strip()][:limit]
    server, url = c.start_quorum(binary, model, 18191)
    seconds = tokens = shared = 0
    try:
        for i, task in enumerate(tasks):
            body = {
                "model": "coder",
                "messages": [{"role": "user", "content": f"{INSTRUCTION}\n\n```python\n{task['prompt']}```"}],
                "n": 5, "temperature": temperature, "seed": 100 + i, "max_tokens": 512,
            }
            before = c.shared_tokens(url)
            t = time.perf_counter()
            r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=900)
            dt = time.perf_counter() - t
            r.raise_for_status()
            n, s = r.json()["usage"]["completion_tokens"], c.shared_tokens(url) - before
            seconds, tokens, shared = seconds + dt, tokens + n, shared + s
            print(f"{task['task_id']}: {dt:.1f} s, {n} tokens, {s} shared a row", flush=True)
    finally:
        server.terminate()
    print(f"total: {seconds:.1f} s, {tokens} tokens, {tokens / seconds:.1f} tok/s, {shared} shared a row")


if __name__ == "__main__":
    main()
