"""quorum's side of compare_llama_cpp.py alone, for a machine without llama.cpp's tools
(the CUDA run in RESULTS.md): single-stream decode and prefill, 5 concurrent requests,
one request with n=5 (forked) and one with n=1, medians over rounds.

Usage: python benches/quorum_fork.py QUORUM_BINARY MODEL.gguf [ROUNDS]"""

import json
import statistics
import sys

import compare_llama_cpp as c


def main():
    binary, model = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    server, url = c.start_quorum(binary, model, 18181)
    res = {k: [] for k in ("q_tg", "q_pp", "q_5", "q_fork", "q_shared", "q_single")}
    try:
        for _ in range(rounds):
            tg, pp, _ = c.quorum_speed(url, 512)
            res["q_tg"].append(tg)
            res["q_pp"].append(pp)
            res["q_5"].append(c.concurrent(url, "coder", 5))
            q_fork, shared = c.fork(url, "coder")
            res["q_fork"].append(q_fork)
            res["q_shared"].append(shared)
            res["q_single"].append(c.single(url, "coder")[0])
    finally:
        server.terminate()
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"decode {med['q_tg']:.0f} tok/s, prefill {med['q_pp']:.0f} tok/s")
    print(f"5 concurrent {med['q_5']:.2f} s, n=5 {med['q_fork']:.2f} s ({med['q_shared']:.0f} of 640 tokens shared a row), n=1 {med['q_single']:.2f} s")
    print(f"n=5 / 5 concurrent: {med['q_fork'] / med['q_5']:.2f} (target <= 0.6 against llama-server's 5)")
    print(f"n=5 / n=1: {med['q_fork'] / med['q_single']:.2f} (target <= 2.5)")
    print("raw:", json.dumps({k: [round(x, 3) for x in v] for k, v in res.items()}))


if __name__ == "__main__":
    main()
