#!/usr/bin/env bash
# The native C++ tests on this machine (x86-64): the core (clock, buffers,
# string table), the Kineto reader (when its tests exist), the capture session
# on the CUPTI test double and the launch hooks on the CUDA driver double, and
# the reader's fuzz target replaying tests/native/fuzz_corpus/reader/;
# built three times: optimised (-O2), under ThreadSanitizer, and under
# AddressSanitizer + UndefinedBehaviorSanitizer.
# Any failed check or sanitizer report fails the script.
#
# CUPTI/CUDA headers come from the nvidia-cuda-* 13.0 wheels (never a local
# CUDA toolkit). Run from anywhere: bash .ci/native.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CXX=${CXX:-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download -q --no-deps -d "$work/whl" \
  "nvidia-cuda-cupti==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
  2> >(grep -v "is ignored" >&2 || true)
for w in "$work"/whl/*.whl; do python3 -m zipfile -e "$w" "$work/x"; done
inc="$work/x/nvidia/cu13/include"
test -f "$inc/cupti.h" || { echo "native.sh: no cupti.h in the CUPTI wheel" >&2; exit 1; }

core_src=(csrc/core/clock.cpp csrc/core/order_join.cpp csrc/core/string_table.cpp
  csrc/core/thread_buffers.cpp)
common=(-std=c++17 -g -Wall -Wextra -Werror -pthread -Icsrc -isystem "$inc")

# build NAME FLAGS...: the three test programs and the CUPTI double, into $work/NAME
build() {
  local name=$1
  shift
  local out="$work/$name"
  mkdir -p "$out"
  "$CXX" "${common[@]}" "$@" "${core_src[@]}" tests/native/core_tests.cpp -o "$out/core_tests" &
  # -rdynamic: the test program exports the launch hooks' interface it defines
  "$CXX" "${common[@]}" "$@" "${core_src[@]}" csrc/cupti/*.cpp tests/native/session_tests.cpp \
    -rdynamic -ldl -o "$out/session_tests" &
  "$CXX" "${common[@]}" "$@" -shared -fPIC tests/native/double/cupti_double.cpp \
    -o "$out/libskipnative_cupti_double.so" &
  "$CXX" "${common[@]}" "$@" -shared -fPIC tests/native/double/cuda_double.cpp \
    -Wl,-soname,libcuda.so.1 -o "$out/libskipnative_cuda_double.so" &
  # optimised whatever the build, as CMakeLists.txt builds it (its dlsym hands
  # lookups on as a tail call); it checks dlsym's name though dlfcn.h says non-null
  "$CXX" "${common[@]}" "$@" -O2 -foptimize-sibling-calls -Wno-nonnull-compare -shared -fPIC \
    csrc/cupti/hooks/launch_hooks.cpp -ldl -o "$out/libskipnative_hooks.so" &
  "$CXX" "${common[@]}" "$@" tests/native/hooks_tests.cpp -ldl -o "$out/hooks_tests" &
  if [ -f tests/native/reader_tests.cpp ]; then
    "$CXX" "${common[@]}" "$@" csrc/core/*.cpp csrc/kineto/*.cpp tests/native/reader_tests.cpp \
      -o "$out/reader_tests" &
  fi
  # the reader's fuzz target with a main that replays its committed corpus (no clang needed)
  if [ -f tests/native/fuzz_reader.cpp ]; then
    "$CXX" "${common[@]}" "$@" -DSKIPNATIVE_FUZZ_REPLAY csrc/core/*.cpp csrc/kineto/*.cpp \
      tests/native/fuzz_reader.cpp -o "$out/fuzz_reader" &
  fi
  local rc=0
  for job in $(jobs -p); do wait "$job" || rc=1; done
  return $rc
}

# run NAME [PREFIX...]: every test program of that build
run() {
  local out="$work/$1"
  shift
  echo "== $(basename "$out")"
  "$@" "$out/core_tests"
  [ ! -x "$out/reader_tests" ] || "$@" "$out/reader_tests"
  [ ! -x "$out/fuzz_reader" ] || "$@" "$out/fuzz_reader" tests/native/fuzz_corpus/reader
  SKIPNATIVE_CUPTI_LIBRARY="$out/libskipnative_cupti_double.so" "$@" "$out/session_tests"
  "$@" "$out/hooks_tests" "$out/libskipnative_cupti_double.so" \
    "$out/libskipnative_cuda_double.so" "$out/libskipnative_hooks.so"
}

# ThreadSanitizer's shadow memory does not fit some kernels' high-entropy
# address randomisation ("unexpected memory mapping"): run it without ASLR.
no_aslr=()
if setarch "$(uname -m)" -R true 2>/dev/null; then no_aslr=(setarch "$(uname -m)" -R); fi

build native -O2
run native

# A sanitizer report is an error (exit code 66), never just a log line.
build tsan -O1 -fsanitize=thread
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" run tsan "${no_aslr[@]}"

build asan -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
ASAN_OPTIONS="halt_on_error=1 exitcode=66 detect_leaks=1 abort_on_error=0" \
  UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" run asan

echo "native tests: all builds passed"
