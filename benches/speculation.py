"""Driver for speculation.sh: speculative decoding by prompt lookup in quorum and in
llama-server (`--spec-type ngram-simple`), and with `--draft`, by a draft model in both
(quorum's `speculation = "draft"`, llama-server's `-md`), each against its own decode
without it, on the same GGUFs and threads, in one run.

Prompts: the coder's prompts of the pipeline for tasks of `evals/tasks.jsonl` (its system
prompt and answer format, whole files and edit blocks, the task's file as the code shown),
and a plain prose prompt. Greedy, streamed; decode speed is measured from the client, from
the first streamed token to the last, the same way on both servers, and acceptance is
taken from each server's own counters (quorum: `usage.speculation`; llama-server:
`timings.draft_n` / `draft_n_accepted`). Rounds are interleaved and medians reported.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parents[1]


def coder_prompt(task, fmt):
    """The pipeline's coder prompt for a one-step plan on the task's file (see
    src/pipeline/stages/code.rs)."""
    system = (ROOT / "prompts" / "coder.md").read_text().strip() + "\n\n" + (
        ROOT / "prompts" / "formats" / f"{fmt}.md").read_text().strip()
    request = {"whole-files": "Write the changed files now.", "edit-blocks": "Write the edit blocks for this step now."}
    step = f"Implement `{task['entry_point']}` in solution.py as its docstring describes."
    user = (f"Task:\n{step}\n\nStep 1 of 1: {step}\n\nCode:\nFILE: solution.py\n```\n{task['prompt']}```\n"
            f"\n{request[fmt]}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


PROSE = [{"role": "user", "content": "Write a short essay on the history of lighthouses and the people who kept them."}]


def prompts(n_tasks):
    tasks = [json.loads(line) for line in (ROOT / "evals" / "tasks.jsonl").read_text().splitlines()[:n_tasks]]
    out = []
    for t in tasks:
        out.append(("whole-file", coder_prompt(t, "whole-files"), 1))
        out.append(("edit-blocks", coder_prompt(t, "edit-blocks"), 1))
        out.append(("whole-file n=5", coder_prompt(t, "whole-files"), 5))
    out.append(("prose", PROSE, 1))
    return out


def wait(url, proc):
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not start")


class Server:
    def __init__(self, name, cmd, url, model_name):
        self.name, self.url, self.model = name, url, model_name
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(url, self.proc)

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def run(self, messages, max_tokens, n=1):
        """One streamed chat, greedy, or for `n` > 1 the code stage's fork (n samples at
        temperature 0.5): (decode tok/s over all samples, tokens, drafted, accepted, wall s)."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}, "cache_prompt": False}
        if n > 1:
            body.update(n=n, temperature=0.5, seed=1)
        start = time.perf_counter()
        first = last = None
        usage, timings = {}, {}
        with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, timeout=900) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                    last = time.perf_counter()
                    first = first or last
                usage = chunk.get("usage") or usage
                timings = chunk.get("timings") or timings
        tokens = usage.get("completion_tokens", 0)
        spec = usage.get("speculation") or {}
        drafted = spec.get("drafted_tokens", timings.get("draft_n", 0))
        accepted = spec.get("accepted_tokens", timings.get("draft_n_accepted", 0))
        rate = (tokens - 1) / (last - first) if first and last > first else 0.0
        return rate, tokens, drafted, accepted, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--quorum", required=True)
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tasks", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--only", default="", help="comma-separated server names")
    ap.add_argument("--draft", default="", help="a draft GGUF of the model's vocabulary (llama-server -md)")
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp())
    configs = {}
    modes = [("quorum", "off"), ("quorum+lookup", "lookup")] + ([("quorum+draft", "draft")] if a.draft else [])
    for name, spec in modes:
        cfg = tmp / f"{spec}.toml"
        # Every role on the model (one load); the coder drafted for by the draft model.
        roles = "".join(f'[roles.{r}]\nmodel = "{a.model}"\n' + (f'draft = "{a.draft}"\n' if r == "coder" else "")
                        for r in ["preprocessor", "planner", "coder", "voter", "reviewer"])
        cfg.write_text(f'prompt_cache = false\nspeculation = "{spec}"\n{roles}')
        configs[name] = [a.quorum, "--config", str(cfg), "serve", "--port", "8931", "--threads", str(a.threads),
                         "--state", str(tmp / f"{spec}.redb")]
    llama = [f"{a.llama_bin}/llama-server", "-m", a.model, "--port", "8932", "-t", str(a.threads), "-np", "1",
             "-c", "4096", "--no-webui"]
    configs["llama-server"] = llama
    configs["llama-server+ngram"] = llama + ["--spec-type", "ngram-simple"]
    if a.draft:
        configs["llama-server+draft"] = llama + ["-md", a.draft, "-td", str(a.threads), "--spec-type", "draft-simple"]
    names = [n for n in configs if not a.only or n in a.only.split(",")]
    work = prompts(a.tasks)
    results = {n: {} for n in names}  # name -> kind -> list of (rate, tokens, drafted, accepted, wall)
    for r in range(a.rounds):
        for name in names:
            url = "http://127.0.0.1:" + ("8931" if name.startswith("quorum") else "8932")
            server = Server(name, configs[name], url, "coder")
            try:
                for kind, messages, n in work:
                    if n > 1 and not name.startswith("quorum"):
                        continue  # llama-server answers one sample per request
                    out = server.run(messages, a.max_tokens, n)
                    results[name].setdefault(kind, []).append(out)
                    print(f"round {r} {name:20} {kind:12} {out[0]:6.1f} tok/s  {out[1]:4} tokens  "
                          f"drafted {out[2]:4} kept {out[3]:4}  {out[4]:5.1f} s", flush=True)
            finally:
                server.close()
    kinds = sorted({k for k, _, _ in work}, key=[k for k, _, _ in work].index)
    print("\n| prompt | server | decode tok/s | speedup | drafted | kept | acceptance |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        for name in names:
            runs = results[name].get(kind, [])
            if not runs:
                continue
            rate = statistics.median(x[0] for x in runs)
            base_name = name.split("+")[0]
            base = statistics.median(x[0] for x in results.get(base_name, {}).get(kind, [(0,)])) or 0
            drafted, kept = sum(x[2] for x in runs), sum(x[3] for x in runs)
            speedup = f"{rate / base:.2f}x" if base and name != base_name else ""
            acc = f"{kept / drafted:.0%}" if drafted else ""
            print(f"| {kind} | {name} | {rate:.1f} | {speedup} | {drafted} | {kept} | {acc} |")
    print("\nraw:", json.dumps({n: {k: [round(x[0], 2) for x in v] for k, v in d.items()} for n, d in results.items()}))


if __name__ == "__main__":
    main()
