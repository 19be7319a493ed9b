"""Where a decode step's time goes, one stream at a time: llama-bench's tg128, then one
streamed completion of TOKENS tokens (greedy, then at temperature 0.7) from llama-server
and from quorum (`speculation = "off"`, prompt cache off), with quorum's /metrics read
before and after each (llama_decode calls and their time, the wait for the device, sampling time). Once with
llama.cpp's CUDA graphs as built, once with GGML_CUDA_DISABLE_GRAPHS=1 for every process.
Run by benches/gpu/device.sh steps."""

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

import httpx

SERIES = ("quorum_decode_steps_total", "quorum_decode_seconds_total", "quorum_device_wait_seconds_total",
          "quorum_sampling_seconds_total",
          "quorum_drafting_seconds_total", "quorum_generated_tokens_total")


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


def metrics(url):
    text = httpx.get(f"{url}/metrics", timeout=10).text
    sums = dict.fromkeys(SERIES, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in sums:
            sums[name] += float(line.rsplit(" ", 1)[1])
    return sums


def stream(url, model, tokens, temperature):
    """Seconds from the first streamed token to the last, and tokens streamed."""
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": tokens, "temperature": temperature,
            "seed": 1, "ignore_eos": True, "stream": True, "cache_prompt": False}
    stamps = []
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:]).get("choices"):
                stamps.append(time.perf_counter())
    return stamps[-1] - stamps[0], len(stamps)


def llama_bench(bin_dir, model, threads, env):
    out = subprocess.run([f"{bin_dir}/llama-bench", "-m", model, "-t", str(threads), "-p", "0", "-n", "128",
                          "-r", "3", "-o", "json"], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out)[0]["avg_ts"]


def main():
    ap = argparse.ArgumentParser()
    for a in ("--model", "--llama-bin", "--quorum"):
        ap.add_argument(a, required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=256)
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp())
    cfg = tmp / "off.toml"
    cfg.write_text('prompt_cache = false\nspeculation = "off"\n')
    print(f"model: {pathlib.Path(a.model).name}, {a.tokens} tokens a stream, ms a token after the first")
    print()
    print("| CUDA graphs | llama-bench tg128 | server | temperature | ms/token | llama_decode ms/step | "
          "device wait ms/step | sampling ms/token | rest ms/token | decode steps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for graphs in ("on", "off"):
        env = dict(os.environ)
        if graphs == "off":
            env["GGML_CUDA_DISABLE_GRAPHS"] = "1"
        else:
            env.pop("GGML_CUDA_DISABLE_GRAPHS", None)
        tg = llama_bench(a.llama_bin, a.model, a.threads, env)
        servers = [
            ("llama-server", [f"{a.llama_bin}/llama-server", "-m", a.model, "--port", "8942", "-t", str(a.threads),
                              "-np", "1", "-c", "4096", "--no-webui"], "http://127.0.0.1:8942"),
            ("quorum", [a.quorum, "--config", str(cfg), "serve", "--port", "8941", "--threads", str(a.threads),
                        "--state", str(tmp / f"{graphs}.redb"), "--model", f"all={a.model}"],
             "http://127.0.0.1:8941"),
        ]
        for name, cmd, url in servers:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                wait(url, proc)
                stream(url, "coder", 16, 0.0)  # warm-up
                for temperature in (0.0, 0.7):
                    before = metrics(url) if name == "quorum" else None
                    secs, n = stream(url, "coder", a.tokens, temperature)
                    per = secs / (n - 1) * 1e3
                    cells = ["", "", "", "", ""]
                    if before:
                        d = {k: v - before[k] for k, v in metrics(url).items()}
                        steps = d["quorum_decode_steps_total"] or 1
                        gen = d["quorum_generated_tokens_total"] or 1
                        dec = d["quorum_decode_seconds_total"] / steps * 1e3
                        waited = d["quorum_device_wait_seconds_total"] / steps * 1e3
                        smp = d["quorum_sampling_seconds_total"] / gen * 1e3
                        rest = per - (dec + waited) * steps / gen - smp
                        cells = [f"{dec:.3f}", f"{waited:.3f}", f"{smp:.3f}", f"{rest:.3f}",
                                 f"{steps:.0f} for {gen:.0f} tokens"]
                        print("metrics delta:", json.dumps({k: round(v, 6) for k, v in d.items()}), flush=True)
                    print(f"| {graphs} | {tg:.1f} tok/s ({1e3 / tg:.3f} ms) | {name} | {temperature} | {per:.3f} | "
                          + " | ".join(cells) + " |", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
