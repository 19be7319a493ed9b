# Sourced by the scripts that build quorum: settings of the llama.cpp build.
#
# On x86-64 Linux, ggml is built without its AMX kernels (Sapphire Rapids and later):
# they crash on Q4_K weights (ggml-org/llama.cpp#20824, unfixed upstream) and give wrong
# results on Q4_0/Q4_1 (#16315). -march=native turns AMX on; explicit -mno flags win over
# it. llama-cpp-sys-2 passes CMAKE_* variables to CMake, at its first configure only: a
# build directory configured without them keeps AMX until `cargo clean -p llama-cpp-sys-2`.
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
  export CMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG -mno-amx-int8 -mno-amx-tile"
  export CMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG -mno-amx-int8 -mno-amx-tile"
fi
