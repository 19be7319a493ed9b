#!/usr/bin/env bash
# Sets up a fresh machine and serves the small profile on http://127.0.0.1:8080.
# Extra arguments go to `quorum serve` (e.g. --port 9000).
set -euo pipefail
# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
# One build cache outside the clone, shared with the test script.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quorum/target}"
. "$root/scripts/build-env.sh"
cd "$root"
exec cargo run --release --locked -- serve "$@"
