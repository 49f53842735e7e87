# scripts/fuzz-build.sh: sourced by scripts/fuzz and scripts/sanitize. Sets B (build-fuzz/, configured here the
# first time: clang-19, ASan + UBSan + libFuzzer, the torch-free half) and the sanitizers' options, which the build
# needs too (CTest's test discovery runs the instrumented test binaries). Needs ROOT; each script sets its own
# ASAN_OPTIONS.
B="$ROOT/build-fuzz"
if [[ ! -f "$B/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-19 \
        -DCMAKE_CXX_COMPILER=clang++-19 -DDISTILL_TORCH=OFF -DDISTILL_FUZZ=ON \
        -DDISTILL_TORCH_BIN="$ROOT/build/bin/distill-torch" >/dev/null
fi
export LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [[ -x /usr/lib/llvm-19/bin/llvm-symbolizer ]]; then export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-19/bin/llvm-symbolizer; fi
