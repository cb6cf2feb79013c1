#!/usr/bin/env bash
# CI for aarch64 (Grace): cross-build skipnative for aarch64 through the project's
# CMakeLists.txt and run, under qemu-user, the native core and session tests, then
# the Python tests (tests/unit, tests/native) with Debian's arm64 Python on the
# built package. Any missing tool, failed download or failed step fails the script.
#
# Debian's python3:arm64 cannot be installed beside the host's python3:amd64 (apt
# would remove the host's python3 and what depends on it), so its packages are only
# downloaded and unpacked into a private sysroot that qemu-aarch64 -L runs from.
# numpy, pytest, hypothesis, pandas and matplotlib are the aarch64 wheels a Grace
# user's pip installs. CUDA/CUPTI headers come from NVIDIA's wheels (the headers
# are the same on every architecture); no CUDA toolkit on the machine is used.
#
# Run from anywhere: bash .ci/aarch64.sh [extra pytest arguments]. A few slow
# architecture-neutral pure-Python tests are left to the x86 stage (SLOW_PURE_PYTHON);
# AARCH64_FULL=1 runs them too. AARCH64_KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
if [[ -d src/skipnative ]]; then PKG_SRC=src/skipnative; else PKG_SRC=skipnative; fi
HOST_PY=${HOST_PY:-python3}
JOBS=$(nproc)
T0=$SECONDS

step() { echo "== aarch64 [$((SECONDS - T0))s] $*"; }
fail() {
  echo "aarch64: FAILED: $*" >&2
  exit 1
}
# quiet LOG CMD...: runs CMD with its output in $WORK/LOG, shown only if it fails.
quiet() {
  local log=$WORK/$1
  shift
  "$@" >"$log" 2>&1 || {
    tail -n 60 "$log" >&2
    return 1
  }
}

WORK=$(mktemp -d /tmp/skipnative-aarch64.XXXXXX)
WHEELS_PID=
cleanup() {
  if [[ -n "$WHEELS_PID" ]] && kill -0 "$WHEELS_PID" 2>/dev/null; then
    pkill -P "$WHEELS_PID" 2>/dev/null || true
    kill "$WHEELS_PID" 2>/dev/null || true
    wait "$WHEELS_PID" 2>/dev/null || true
  fi
  if [[ "${AARCH64_KEEP:-}" == 1 ]]; then
    echo "aarch64: work folder kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# --- toolchain ------------------------------------------------------------------
install_toolchain() {
  step "toolchain"
  command -v apt-get >/dev/null || fail "apt-get not found: cannot install the aarch64 toolchain"
  command -v dpkg >/dev/null || fail "dpkg not found"
  local need=()
  command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
  command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
  command -v cmake >/dev/null || need+=(cmake)
  command -v ninja >/dev/null || need+=(ninja-build)
  command -v readelf >/dev/null || need+=(binutils)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64 || fail "dpkg --add-architecture arm64"
  fi
  apt-get update -qq || fail "apt-get update"
  if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
      >/dev/null || fail "apt-get install ${need[*]}"
  fi
  local t
  for t in aarch64-linux-gnu-g++ aarch64-linux-gnu-gcc qemu-aarch64 cmake ninja readelf dpkg-deb; do
    command -v "$t" >/dev/null || fail "$t is missing after installing the toolchain"
  done
  "$HOST_PY" -m pip --version >/dev/null || fail "$HOST_PY -m pip is not available"
}

# Debian's arm64 Python (interpreter, stdlib, headers) and libstdc++, unpacked only.
make_sysroot() {
  step "Debian python3:arm64 sysroot"
  SYSROOT=$WORK/sysroot
  local debs=$WORK/debs
  mkdir -p "$debs/partial" "$SYSROOT"
  # -d: download only; nothing is installed or removed on this machine.
  apt-get install -d -y -qq -o Dir::Cache::Archives="$debs" -o APT::Sandbox::User=root \
    python3:arm64 libpython3-dev:arm64 libstdc++6:arm64 >/dev/null \
    || fail "could not download python3:arm64 libpython3-dev:arm64 libstdc++6:arm64"
  local d n=0
  for d in "$debs"/*_arm64.deb "$debs"/*_all.deb; do
    [[ -e "$d" ]] || continue
    dpkg-deb -x "$d" "$SYSROOT" || fail "dpkg-deb -x $d"
    n=$((n + 1))
  done
  ((n > 0)) || fail "no arm64 packages were downloaded"
  [[ -x "$SYSROOT/usr/bin/python3" ]] || fail "no python3 in the arm64 packages"

  # The interpreter for CMake and pytest. Processes the tests start use
  # sys.executable, which must be this wrapper (no binfmt_misc: an aarch64 binary
  # cannot be exec'ed directly), so a sitecustomize sets it.
  ARM_PY=$WORK/bin/python3-aarch64
  mkdir -p "$WORK/bin" "$WORK/hook"
  printf '#!/bin/sh\nexec qemu-aarch64 -L %q %q "$@"\n' "$SYSROOT" "$SYSROOT/usr/bin/python3" >"$ARM_PY"
  # A test builds a stand-in libcuda with `cc`: on aarch64 that is the aarch64 compiler.
  printf '#!/bin/sh\nexec aarch64-linux-gnu-gcc "$@"\n' >"$WORK/bin/cc"
  chmod +x "$ARM_PY" "$WORK/bin/cc"
  printf 'import sys\n\nsys.executable = "%s"\n' "$ARM_PY" >"$WORK/hook/sitecustomize.py"
  local machine
  machine=$("$ARM_PY" -c 'import platform; print(platform.machine())') \
    || fail "the arm64 python3 does not run under qemu-aarch64"
  [[ "$machine" == aarch64 ]] || fail "the arm64 python3 reports machine '$machine'"
}

# The aarch64 wheels the Python tests import (fetched while the build runs).
fetch_test_wheels() {
  ARM_SITE=$WORK/site
  quiet pip-wheels.log "$HOST_PY" -m pip install --disable-pip-version-check --no-warn-conflicts \
    --target "$ARM_SITE" --only-binary=:all: --implementation cp --python-version 3.11 \
    --abi cp311 --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 \
    numpy pytest hypothesis pandas matplotlib || fail "could not fetch the aarch64 wheels"
}

# pybind11 (headers and CMake files) and the CUDA/CUPTI headers from NVIDIA's wheels.
fetch_build_packages() {
  step "pybind11 and the CUDA/CUPTI header wheels"
  quiet pip-pybind11.log "$HOST_PY" -m pip install --disable-pip-version-check --no-warn-conflicts \
    --target "$WORK/host" "pybind11>=2.12" || fail "could not fetch pybind11"
  PYBIND11_DIR=$WORK/host/pybind11/share/cmake/pybind11
  [[ -f "$PYBIND11_DIR/pybind11Config.cmake" ]] || fail "no pybind11Config.cmake in $PYBIND11_DIR"

  local wheels=$WORK/cuda-wheels w
  quiet pip-cuda.log "$HOST_PY" -m pip download --disable-pip-version-check --no-deps -d "$wheels" \
    "nvidia-cuda-cupti==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
    || fail "could not download the nvidia-cuda-cupti/-runtime/-crt 13.0 wheels"
  for w in "$wheels"/*.whl; do
    "$HOST_PY" -m zipfile -e "$w" "$WORK/cuda" || fail "could not unpack $w"
  done
  CUDA_ROOT=$WORK/cuda/nvidia/cu13
  local h
  for h in cupti.h cuda.h crt/host_defines.h; do
    [[ -f "$CUDA_ROOT/include/$h" ]] || fail "the CUDA wheels have no include/$h"
  done
}

# --- build through CMakeLists.txt ------------------------------------------------
build() {
  step "configure (CMake, aarch64-linux-gnu toolchain)"
  BUILD=$WORK/build
  # FindPython does not take a cross-compiled interpreter's headers from it: named here.
  local py_inc
  py_inc=$("$ARM_PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [[ -f "$py_inc/Python.h" ]] || fail "no Python.h in $py_inc"
  # Only the wheels' headers: CUDA_PATH unset, and /usr/local/cuda (the build's
  # last resort) must not be what the configure picks.
  env -u CUDA_PATH CUDA_HOME="$CUDA_ROOT" cmake -S "$REPO" -B "$BUILD" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$REPO/.ci/aarch64-linux-gnu.cmake" \
    -DSKIPNATIVE_ARM_SYSROOT="$SYSROOT" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DSKIPNATIVE_CORE_TESTS=ON \
    -DPython_EXECUTABLE="$ARM_PY" -DPython_INCLUDE_DIR="$py_inc" -Dpybind11_DIR="$PYBIND11_DIR" \
    >"$WORK/configure.log" 2>&1 || {
    cat "$WORK/configure.log" >&2
    fail "CMake configure"
  }
  grep -F "skipnative: CUDA/CUPTI headers from $CUDA_ROOT/include" "$WORK/configure.log" || {
    cat "$WORK/configure.log" >&2
    fail "the build did not take the CUDA headers from the wheels"
  }
  if grep -q /usr/local/cuda "$BUILD/compile_commands.json"; then
    fail "the build uses /usr/local/cuda"
  fi
  step "build ($JOBS jobs)"
  quiet build.log cmake --build "$BUILD" -j "$JOBS" || fail "cross build"
  # The session tests have no CMake target: they link the libraries CMake built.
  aarch64-linux-gnu-g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread -I"$REPO/csrc" \
    -isystem "$CUDA_ROOT/include" "$REPO/tests/native/session_tests.cpp" \
    "$BUILD/libskipnative_cupti.a" "$BUILD/libskipnative_core.a" -rdynamic -ldl \
    -o "$BUILD/session_tests" || fail "building the session tests"
}

native_tests() {
  step "core tests under qemu"
  qemu-aarch64 -L "$SYSROOT" "$BUILD/core_tests" || fail "core tests (aarch64)"
  step "session tests on the CUPTI double under qemu"
  SKIPNATIVE_CUPTI_LIBRARY="$BUILD/libskipnative_cupti_double.so" \
    qemu-aarch64 -L "$SYSROOT" "$BUILD/session_tests" || fail "session tests (aarch64)"
}

# The package as `pip install .` lays it out: the Python sources, then CMake's
# install rules put _native*.so in skipnative/ and the doubles in skipnative/testing/.
assemble() {
  step "assemble the package"
  PKG=$WORK/pkg
  mkdir -p "$PKG/skipnative"
  # Compiled files in the source tree (an in-place host build) are not copied.
  tar -C "$REPO/$PKG_SRC" --exclude=__pycache__ --exclude='*.so' --exclude='*.pyc' -cf - . \
    | tar -C "$PKG/skipnative" -xf - || fail "copying $PKG_SRC"
  cmake --install "$BUILD" --prefix "$PKG" >/dev/null || fail "cmake --install"
  local so n=0 machine
  while IFS= read -r so; do
    machine=$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')
    echo "   $(basename "$so"): $machine"
    [[ "$machine" == AArch64 ]] || fail "$so is not an AArch64 object ($machine)"
    n=$((n + 1))
  done < <(find "$PKG" -name '*.so')
  ((n >= 4)) || fail "expected _native and three test doubles, found $n .so files"
  compgen -G "$PKG/skipnative/_native.cpython-311-aarch64-linux-gnu.so" >/dev/null \
    || fail "no skipnative/_native.cpython-311-aarch64-linux-gnu.so"
  local double
  for double in cupti cuda cudart; do
    [[ -f "$PKG/skipnative/testing/libskipnative_${double}_double.so" ]] \
      || fail "no skipnative/testing/libskipnative_${double}_double.so"
  done
}

# Architecture-neutral pure-Python tests that take longest under qemu (the x86 stage
# runs them); AARCH64_FULL=1 runs them here too.
SLOW_PURE_PYTHON=(
  "tests/unit/test_profile.py::test_low_match_rate_warns"
  "tests/unit/test_profile.py::test_lcs_gives_up_beyond_its_edit_budget"
  "tests/unit/test_profile.py::test_lcs_pairs_is_a_longest_common_subsequence"
  "tests/unit/test_h100_capture.py::test_report_of_the_graph_sweep_says_the_queue_transition_does_not_apply"
  "tests/unit/test_h100_capture.py::test_report_tables_are_per_timed_iteration"
  "tests/unit/test_report_and_commands.py::test_demo_without_a_gpu_reports_the_bundled_capture"
)

# Real-time tests whose bounds assume native speed, or a 1 GHz counter (qemu's
# cntvct ticks at 62.5 MHz, so a 3000 ns spin can read 2992 ns): under emulation
# they measure qemu, not the code. AARCH64_FULL=1 runs them too.
QEMU_TIMING=(
  "tests/native/test_commands_on_double.py::test_sweep_and_report_on_the_simulated_gpu"
  "tests/native/test_launch_bench_on_double.py::test_overhead_loops_never_wait_for_a_full_queue"
  "tests/native/test_session.py::test_real_clock_orders_launch_and_kernel[cntvct]"
)

python_tests() {
  step "Python tests under qemu (tests/unit tests/native)"
  local args=(-p no:cacheprovider -q -ra --durations=15)
  if [[ "${AARCH64_FULL:-}" != 1 ]]; then
    local t
    for t in "${SLOW_PURE_PYTHON[@]}" "${QEMU_TIMING[@]}"; do args+=(--deselect "$t"); done
    args+=(-m "not slow")  # the long stress runs: the x86 stage runs them
  fi
  # -P: the repository root is not put on sys.path, so the package under test is
  # the assembled one, not the source tree.
  (
    cd "$REPO"
    PATH="$WORK/bin:$PATH" PYTHONPATH="$PKG:$WORK/hook:$ARM_SITE" MPLCONFIGDIR="$WORK/mpl" \
      MPLBACKEND=Agg PYTHONPYCACHEPREFIX="$WORK/pycache" \
      "$ARM_PY" -P -m pytest "${args[@]}" tests/unit tests/native "$@"
  ) || fail "Python tests (aarch64)"
}

main() {
  install_toolchain
  make_sysroot
  step "aarch64 wheels for the tests (numpy pytest hypothesis pandas matplotlib), in the background"
  fetch_test_wheels &
  WHEELS_PID=$!
  fetch_build_packages
  build
  native_tests
  assemble
  step "waiting for the aarch64 wheels"
  wait "$WHEELS_PID" || fail "fetching the aarch64 wheels"
  WHEELS_PID=
  ARM_SITE=$WORK/site
  python_tests "$@"
  step "done"
}
main "$@"
