#!/usr/bin/env bash
# Checks a what-if prediction against reality: the default decoder's prefill as
# CUDA graphs, measured, beside what `skip whatif --graphs` predicts from the
# eager sweep in bench/results. Results go to $OUT.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/card.txt"
python3 -m pip install --no-build-isolation --no-deps "$REPO" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
cd /tmp || exit 1
PYTHONUNBUFFERED=1 timeout "${SWEEP_TIMEOUT:-150}" python3 "$REPO/bench/gpu_sweep.py" --graphs \
  --out "$OUT/graphs" --batch-sizes "${BATCHES:-1,2,4,8,16}" 2>&1 | tee "$OUT/graphs.txt"
tar czf "$OUT/graphs.tgz" -C "$OUT" graphs && rm -rf "$OUT/graphs"
