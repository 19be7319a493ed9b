#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine (or a Mac with Homebrew) to build and run quorum:
# the C/C++ toolchain llama.cpp needs, the small models, and (with --test) the Python
# clients and agent CLIs the interop tests use. Idempotent and quiet when everything is in place.
set -euo pipefail
# rustup installs into ~/.cargo/bin, which a non-login shell may not have on PATH.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${QUORUM_CACHE:-$HOME/.cache/quorum}"

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
if [ "$(uname)" = "Linux" ]; then
  have cmake || need_pkgs+=(cmake)
  have make || need_pkgs+=(make)
  have c++ || need_pkgs+=(g++)
  # The C parts (ggml, the tree-sitter grammars) are compiled with cc.
  have cc || need_pkgs+=(gcc)
  have git || need_pkgs+=(git)
  have python3 || need_pkgs+=(python3)
  # bindgen (llama-cpp-sys-2) needs libclang itself; libclang-cpp, which some images ship
  # alone, does not do.
  compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || compgen -G '/usr/lib/*/libclang-[0-9]*.so*' >/dev/null \
    || need_pkgs+=(libclang-dev)
  # Text in images (screenshots in requests) is read by Tesseract's CLI.
  have tesseract || need_pkgs+=(tesseract-ocr)
  if [ "${1:-}" = "--test" ]; then
    python3 -m venv --help >/dev/null 2>&1 || need_pkgs+=(python3-venv)
    # The state suite runs against a real Redis server.
    have redis-server || need_pkgs+=(redis-server)
    # Speech and image tests make their inputs: espeak-ng speaks, sox converts (MP3 too),
    # ImageMagick renders text. (Some images ship a stand-in `convert`: look for the real one.)
    have espeak-ng || need_pkgs+=(espeak-ng)
    have sox || need_pkgs+=(sox)
    compgen -G '/usr/lib/*/sox/libsox_fmt_mp3.so' >/dev/null || need_pkgs+=(libsox-fmt-mp3)
    [ -x /usr/bin/convert ] || have magick || need_pkgs+=(imagemagick)
    compgen -G '/usr/share/fonts/opentype/urw-base35/NimbusMonoPS-Regular.*' >/dev/null || need_pkgs+=(fonts-urw-base35)
  fi
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "quorum setup: installing ${need_pkgs[*]}"
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  fi
elif [ "$(uname)" = "Darwin" ]; then
  have cmake || { echo "quorum setup: installing cmake (Homebrew)"; brew install cmake; }
  have tesseract || { echo "quorum setup: installing tesseract (Homebrew)"; brew install tesseract; }
  if [ "${1:-}" = "--test" ]; then
    have redis-server || { echo "quorum setup: installing redis (Homebrew)"; brew install redis; }
    for tool in espeak-ng sox imagemagick; do
      have "${tool/imagemagick/magick}" || { echo "quorum setup: installing $tool (Homebrew)"; brew install "$tool"; }
    done
  fi
fi

if ! have cargo; then
  echo "error: cargo not found. Install Rust from https://rustup.rs (rustup), then run this again." >&2
  exit 1
fi

"$root/scripts/fetch-small-models.sh"

if [ "${1:-}" = "--test" ]; then
  venv="$cache/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/python/requirements.txt"
  # The agent CLIs of the interop tests. aider pins its own openai and litellm, so it gets
  # a venv of its own; Continue's CLI is an npm package.
  aider="$cache/aider-venv"
  [ -x "$aider/bin/python" ] || python3 -m venv "$aider"
  [ -x "$aider/bin/aider" ] || { echo "quorum setup: installing aider-chat"; "$aider/bin/pip" install -q --disable-pip-version-check aider-chat==0.86.2; }
  if ! [ -x "$cache/node/node_modules/.bin/cn" ]; then
    have npm || { echo "error: npm not found (Continue's CLI is an npm package): install Node.js 20 or later" >&2; exit 1; }
    echo "quorum setup: installing @continuedev/cli"
    mkdir -p "$cache/node"
    npm install --silent --no-audit --no-fund --prefix "$cache/node" @continuedev/cli@1.5.47 >/dev/null
  fi
fi
