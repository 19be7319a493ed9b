#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: Rust unit and integration tests (real
# llama.cpp, small models, a local mock of the Hugging Face hub), then the interop tests
# with the official `openai` Python SDK against the real server.
set -euo pipefail
# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" --test
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quorum/target}"
. "$root/scripts/build-env.sh"
cd "$root"
# The tools' tests run pytest (from the test venv) on fixture repositories.
venv="${QUORUM_CACHE:-$HOME/.cache/quorum}/venv"
export PATH="$venv/bin:$PATH"
# Style first: it fails in seconds. Clippy checks the release profile too, so that it
# reuses the llama.cpp build of the tests instead of building it again for `dev`.
if command -v rustup >/dev/null && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fmt --check
cargo clippy --release --all-targets --locked -- -D warnings
# One profile (release) for the library, the binary and the tests: llama.cpp builds once.
cargo test --release --locked
QUORUM_BIN="$CARGO_TARGET_DIR/release/quorum" python -m pytest -q tests/python
# The tool-calling benchmark's scoring, on hand-made answers (no model).
python evals/tools/run.py --self-test
# The repository eval set: every task's original passes, its workspace fails the hidden
# tests, its reference change passes (projects fetched from PyPI into the cache).
python evals/repos/repos.py validate
