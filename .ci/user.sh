#!/usr/bin/env bash
# A user's machine: no CUDA toolkit, a fresh clone with nothing beside it, a fresh venv
# with the pip it comes with, then the README's two commands exactly as written —
# twice, the second time after a source file changed — and `python -m pytest tests`.
#
# Run as root (CI is): the toolkit is hidden with a private mount namespace and a tmpfs
# over every /usr/local/cuda* folder, so the build can only find the headers that pip
# puts in its isolated build environment.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)

if [ "${SKIPNATIVE_TOOLKIT_HIDDEN:-}" != 1 ]; then
  exec unshare -m env SKIPNATIVE_TOOLKIT_HIDDEN=1 bash "$0" "$@"
fi
for d in /usr/local/cuda*; do
  [ -d "$d" ] && [ ! -L "$d" ] && mount -t tmpfs -o size=1m,mode=0755 tmpfs "$d"
done
# (wrappers in /usr/local/bin that exec the hidden toolkit may remain: they no longer run)
if [ -e /usr/local/cuda/include/cuda.h ] || [ -e /usr/include/cupti.h ] || nvcc --version >/dev/null 2>&1; then
  echo "user.sh: the CUDA toolkit is still visible" >&2
  exit 1
fi
unset CUDA_HOME CUDA_PATH

work=$(mktemp -d /tmp/skipnative-user.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/skipnative"
# the working tree as submitted, also what is not committed yet (a local run)
(cd "$src" && git ls-files -m -o --exclude-standard -z) |
  (cd "$src" && xargs -0r cp --parents -t "$work/skipnative")
cd "$work/skipnative"
[ "$(ls -A "$work")" = skipnative ] || { echo "user.sh: the clone has company" >&2; exit 1; }

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
echo "user.sh: $(python --version), $(pip --version | cut -d' ' -f1-2), no CUDA toolkit"

readme_commands() {
  # the README's two commands, as written there
  main=$(grep -m1 -E "^    pip install '\.\[report\]' && skip demo" README.md | sed 's/^    //')
  tests=$(grep -m1 -E "^    pip install '\.\[test\]' && pytest tests" README.md | sed 's/^    //')
  [ -n "$main" ] && [ -n "$tests" ] || { echo "user.sh: README's two commands not found" >&2; exit 1; }
}
readme_commands
for round in 1 2; do
  echo "user.sh: round $round: $main"
  (cd "$work/skipnative" && eval "$main")
  test -s demo/report.md
  echo "user.sh: round $round: $tests"
  (cd "$work/skipnative" && eval "$tests")
  rm -rf demo
  # the second round builds again after a source change, in a new build environment
  echo "// touched" >>csrc/core/clock.cpp
done
echo "user.sh: python -m pytest tests"
python -m pytest tests -q -x
echo "user.sh: the README's two commands and python -m pytest passed twice without a toolkit"
