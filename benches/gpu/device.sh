#!/usr/bin/env bash
# Runs on the bare GPU machine, in the repository's root: gathers the parts that
# benches/gpu/pack.sh made as they arrive, builds quorum (`--features cuda`) and llama.cpp's
# tools with CUDA from them, and runs the benchmarks. No network is needed.
# Usage: benches/gpu/device.sh take DIR       move the parts that arrived in DIR to the stage
#        benches/gpu/device.sh build          check and unpack the parts, start quorum's build, then the tools'
#        benches/gpu/device.sh models         check and join the GGUFs' parts (into $stage/models)
#        benches/gpu/device.sh wait [SECS]    wait for the builds (at most SECS), show their logs
#        benches/gpu/device.sh bench OUT MODEL.gguf [DRAFT.gguf]   llama.cpp against quorum
#        benches/gpu/device.sh steps OUT MODEL.gguf   one stream's decode step: llama.cpp, quorum's timers
#        benches/gpu/device.sh eval OUT MODEL.gguf [N]   the pipeline on the first N function tasks
#        benches/gpu/device.sh eval-small OUT [N] [SECS]   the same on the small profile (at most SECS)
#        benches/gpu/device.sh eval-repos OUT IDS [SECS] [MODE]   the small profile on repository tasks IDS
#        (QUORUM_EVAL_OPTIONS: pipeline options as JSON, eval's --options)
#        (QUORUM_GPU_TOOLS=0 before build: quorum's build alone, for runs that need no llama.cpp tool)
#        benches/gpu/device.sh tools          then the tools' build, in the background
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
stage="${QUORUM_GPU_STAGE:-$HOME/.cache/quorum-gpu}"
arch="${CMAKE_CUDA_ARCHITECTURES:-90}"
jobs="$(nproc)"
export PATH="$stage/toolchain/bin:$stage/site/bin:$PATH"
export CARGO_TARGET_DIR="$stage/target"
export CMAKE_CUDA_ARCHITECTURES="$arch"
export PYTHONPATH="$stage/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
quorum="$CARGO_TARGET_DIR/release/quorum"
tools="$stage/llama.cpp/build/bin"

# The machine's zstd, else the one that came with the parts.
unzstd() {
  if command -v zstd >/dev/null; then
    zstd -dq
  else
    chmod +x "$stage/parts/zstd.bin" && "$stage/parts/zstd.bin" -dq
  fi
}

# Joins the parts of one file, given its name.
join() {
  cat "$stage/parts/$1".part-*
}

# The small profile names its preprocessor's Gemma, which eval does not load (no
# rewrite_task), so an empty file may stand in for it.
gemma_stand_in() {
  [ -e "$stage/models/gemma-3-270m-q4_k_m.gguf" ] || : > "$stage/models/gemma-3-270m-q4_k_m.gguf"
}

case "${1:-}" in
take)
  mkdir -p "$stage/parts"
  find "$2" -maxdepth 1 -type f -exec mv -t "$stage/parts" {} +
  echo "$(find "$stage/parts" -name '*.part-*' | wc -l) parts staged"
  ;;
build)
  (cd "$stage/parts" && grep -v '\.gguf\.' SHA256SUMS | sha256sum --quiet -c -)
  mkdir -p "$stage/toolchain" "$stage/site"
  join toolchain.tar.zst | unzstd | tar -x -C "$stage/toolchain"
  join vendor.tar.zst | unzstd | tar -x -C "$stage"
  join llama.cpp.tar.zst | unzstd | tar -x -C "$stage"
  join wheels.tar | tar -x -C "$stage"
  if [ -e "$stage/parts/repos.tar.zst.part-000" ]; then
    join repos.tar.zst | unzstd | tar -x -C "$stage"
  fi
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$stage/site" "$stage"/wheels/*.whl
  rustc --version
  # quorum's build first, then the tools' (their two CUDA builds side by side took 14.5 min on
  # 16 cores, against about 10 for quorum's alone), in a session of its own so that it outlives
  # this call. The tools build at a low priority: quorum may be measured meanwhile.
  setsid bash -c "cd '$root' && cargo build --release --locked --offline --features cuda \
    --config 'source.crates-io.replace-with=\"vendored\"' --config 'source.vendored.directory=\"$stage/vendor\"' \
    > '$stage/quorum-build.log' 2>&1; echo \"exit \$?\" >> '$stage/quorum-build.log'; \
    [ '${QUORUM_GPU_TOOLS:-1}' = 0 ] && { echo 'exit 0 (not built)' > '$stage/llama-build.log'; exit; }; \
    '$0' tools-now 15" < /dev/null > /dev/null 2>&1 &
  echo "builds started: $stage/quorum-build.log, $stage/llama-build.log"
  ;;
tools)
  # After a build with QUORUM_GPU_TOOLS=0, once quorum has been measured alone.
  : > "$stage/llama-build.log"
  setsid "$0" tools-now 0 < /dev/null > /dev/null 2>&1 &
  echo "tools' build started: $stage/llama-build.log"
  ;;
tools-now)
  {
    nice -n "$2" cmake -S "$stage/llama.cpp" -B "$stage/llama.cpp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF &&
      nice -n "$2" cmake --build "$stage/llama.cpp/build" --target llama-bench llama-server llama-batched-bench -j "$jobs"
    echo "exit $?"
  } > "$stage/llama-build.log" 2>&1
  ;;
models)
  (cd "$stage/parts" && grep '\.gguf\.' SHA256SUMS | sha256sum --quiet -c -)
  mkdir -p "$stage/models"
  for part in "$stage"/parts/*.gguf.part-000; do
    name="$(basename "$part" .part-000)"
    join "$name" > "$stage/models/$name"
    rm -f "$stage/parts/$name".part-*
  done
  ls -la "$stage/models"
  ;;
wait)
  deadline=$(( $(date +%s) + ${2:-540} ))
  for log in "$stage/quorum-build.log" "$stage/llama-build.log"; do
    while ! grep -q '^exit ' "$log" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 5; done
    echo "== $log"
    tail -n 5 "$log"
  done
  ;;
bench)
  out="$2"
  model="$3"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
  python3 "$root/benches/compare_llama_cpp.py" --model "$model" --rounds 3 --threads "$jobs" \
    --llama-bin "$tools" --quorum "$quorum" --llama-src "$stage/llama.cpp" 2>&1 | tee "$out/compare.txt"
  python3 "$root/benches/speculation.py" --model "$model" --threads "$jobs" --tasks 2 \
    --llama-bin "$tools" --quorum "$quorum" ${4:+--draft "$4"} 2>&1 | tee "$out/speculation.txt"
  ;;
eval)
  out="$2"
  model="$3"
  n="${4:-10}"
  "$quorum" eval --tasks "$root/evals/tasks.jsonl" --mode pipeline --limit "$n" --model "all=$model" \
    --out "$out/eval" 2>&1 | tail -n 60 | tee "$out/eval.txt"
  ;;
steps)
  python3 "$root/benches/gpu/steps.py" --model "$3" --threads "$jobs" --llama-bin "$tools" --quorum "$quorum" \
    2>&1 | tee "$2/steps-$(basename "$3" .gguf).txt"
  ;;
eval-small)
  out="$2/eval-small"
  gemma_stand_in
  # At most SECS: results.json is written after each task, and summary.md drawn from it.
  timeout "${4:-540}" "$quorum" eval --tasks "$root/evals/tasks.jsonl" --mode pipeline --limit "${3:-10}" \
    --models-dir "$stage/models" --out "$out" > "$out.log" 2>&1 || echo "eval ended with $?"
  tail -n 20 "$out.log"
  "$quorum" eval --report --out "$out"
  ;;
eval-repos)
  mode="${5:-pipeline}"
  out="$2/eval-repos-$mode"
  gemma_stand_in
  # repos.py reads the sources from $QUORUM_CACHE/repos (unpacked by build).
  QUORUM_CACHE="$stage" timeout "${4:-540}" "$quorum" eval --repos "$root/evals/repos/tasks.jsonl" --only "$3" \
    --mode "$mode" --models-dir "$stage/models" ${QUORUM_EVAL_OPTIONS:+--options "$QUORUM_EVAL_OPTIONS"} \
    --out "$out" > "$out.log" 2>&1 || echo "eval ended with $?"
  tail -n 20 "$out.log"
  "$quorum" eval --report --out "$out"
  ;;
*)
  sed -n '2,14p' "$0"
  exit 2
  ;;
esac
