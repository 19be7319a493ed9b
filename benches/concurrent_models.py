"""Two models decoding at once against taking turns (`concurrent_decodes`). quorum serves
MODEL_A for the coder and MODEL_B for the reviewer (pass the same file twice under two
names for two models of one size); each gets one request of N samples of 256 tokens
(TOKENS in the environment; ignore_eos), alone and both at once, with concurrent_decodes false, then true. Taking
turns, both at once cost about what the two alone cost together; decoding at once should
cost less where the backend overlaps the two (a GPU), and not more on a CPU.

Usage: python benches/concurrent_models.py QUORUM_BINARY MODEL_A.gguf MODEL_B.gguf [ROUNDS] [N]"""

import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import time

import httpx

from compare_llama_cpp import start

TOKENS = int(os.environ.get("TOKENS", "256"))


def ask(url, model, n):
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": TOKENS, "temperature": 0.7, "seed": 1,
            "n": n, "ignore_eos": True}
    r = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
    r.raise_for_status()
    assert r.json()["usage"]["completion_tokens"] == n * TOKENS, r.json()["usage"]
    return n * TOKENS


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def serve(binary, model_a, model_b, concurrent, port):
    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write(f"prompt_cache = false\nconcurrent_decodes = {'true' if concurrent else 'false'}\n")
    cfg.close()
    url = f"http://127.0.0.1:{port}"
    try:
        server = start([binary, "--config", cfg.name, "serve", "--port", str(port), "--model", f"all={model_a}",
                        "--model", f"reviewer={model_b}"], f"{url}/health")
    finally:
        os.unlink(cfg.name)
    return server, url


def measure(url, rounds, n):
    alone, both = [], []
    for _ in range(rounds):
        a = timed(lambda: ask(url, "coder", n))
        b = timed(lambda: ask(url, "reviewer", n))
        with cf.ThreadPoolExecutor(2) as pool:
            t = time.perf_counter()
            list(pool.map(lambda m: ask(url, m, n), ["coder", "reviewer"]))
            both.append(time.perf_counter() - t)
        alone.append(a + b)
    return statistics.median(alone), statistics.median(both)


def main():
    binary, model_a, model_b = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    for concurrent in (False, True):
        server, url = serve(binary, model_a, model_b, concurrent, 18182)
        try:
            ask(url, "coder", n), ask(url, "reviewer", n)  # warm-up
            alone, both = measure(url, rounds, n)
        finally:
            server.terminate()
            server.wait()
        tokens = 2 * n * TOKENS
        print(f"concurrent_decodes={str(concurrent).lower()}: the two alone {alone:.2f} s, both at once {both:.2f} s "
              f"({tokens / both:.0f} tok/s), at once / alone = {both / alone:.2f}")


if __name__ == "__main__":
    main()
