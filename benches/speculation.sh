#!/usr/bin/env bash
# Speculative decoding by prompt lookup, quorum against llama-server's own (ngram-simple),
# each against its decode without it, on the same GGUF and threads, in one run: the coder's
# prompts of the pipeline (whole files, edit blocks) and a prose prompt. Run on an idle machine.
# Usage: benches/speculation.sh [MODEL.gguf] [ROUNDS] [-- extra driver flags]
# (`-- --draft SMALL.gguf` adds a draft model: the small profile's is the 0.5B coder)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
rounds="${2:-1}"
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
threads="${THREADS:-$(nproc)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quorum/target}"
"$root/scripts/setup.sh" --test >&2
bin=$("$root/benches/llama-cpp-tools.sh")
. "$root/scripts/build-env.sh"
(cd "$root" && cargo build --release --locked -q)
exec "${QUORUM_CACHE:-$HOME/.cache/quorum}/venv/bin/python" "$root/benches/speculation.py" \
  --model "$model" --rounds "$rounds" --threads "$threads" \
  --llama-bin "$bin" --quorum "$CARGO_TARGET_DIR/release/quorum" "$@"
