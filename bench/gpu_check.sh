#!/usr/bin/env bash
# Everything that needs a GPU, in one run (about 8.5 minutes on an H100): build,
# tests/gpu, the native tests, the launch, overhead, sweep, after-stop and
# record-path benchmarks, most wanted first. Results go to $OUT (default
# ./gpu-out), at most 8 files, each written as soon as its stage ends (a run cut
# short still returns what it finished); the log gives each stage's seconds.
# Usage on a GPU machine, from the repository root:
#   bash bench/gpu_check.sh
#   STAGES="tests launch overhead" bash bench/gpu_check.sh   # a subset (the build always runs)
# Stages: fidelity floor incomplete tests launch overhead sweep graphs afterstop record run.
# Within a 15-minute device budget (machine start included), in two calls:
#   STAGES="fidelity floor incomplete record" bash bench/gpu_check.sh  # ~10 min: build, fidelity.json, floor.json
#   STAGES="tests" bash bench/gpu_check.sh                  # ~4 min, if time is left
set -uo pipefail
STAGES=${STAGES:-"fidelity floor incomplete tests launch overhead sweep graphs afterstop record run"}
want() { [[ " $STAGES " == *" $1 "* ]]; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/log.txt
: >"$LOG"
T0=$(date +%s)
say() { echo "== [$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }

say "card"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$LOG"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$LOG"

say "build"
t0=$(date +%s)
if ! python3 -m pip install --no-build-isolation --no-deps "$REPO" >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log" | tee -a "$LOG"
  exit 1
fi
echo "built in $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
rm -f "$OUT/build.log"  # at most 8 files come back from a lent machine
# run from outside the source tree so the installed package (with _native) is imported
cd /tmp || exit 1

if want fidelity; then
  # unprofiled, the kernel-activity-only floor, the timing pass, the timing pass
  # with the launch hooks (joined by external correlation, and by stream order),
  # CUPTI's buffer knobs and torch.profiler, interleaved in
  # one process (the hooks preloaded for all, so every configuration pays their
  # pass-through alike); batch-1 decode and the launch loop. About 6 minutes.
  say "fidelity"
  HOOKS=$(python3 -c "import skipnative; print(skipnative.launch_hooks_library())")
  FIDELITY_CONFIGS=unprofiled,kernel_activity_only,timing_pass,timing_pass_hook,timing_pass_hook_order,timing_pass_stream_waits,knob_no_latency_timestamps,knob_device_buffer_pre_allocate_16,knob_device_buffer_pool_limit_64,knob_buffers_pooled_16,knob_buffers_8MiB,knob_completion_cpu_last,torch_profiler
  PYTHONUNBUFFERED=1 LD_PRELOAD="$HOOKS" timeout "${FIDELITY_TIMEOUT:-360}" python3 "$REPO/bench/gpu_overhead.py" \
    --blocks "${FIDELITY_BLOCKS:-3}" --reps 20 --no-prefill --only "$FIDELITY_CONFIGS" \
    --json "$OUT/overhead_fidelity.json" 2>&1 | tail -20 | tee -a "$LOG"
  python3 "$REPO/bench/fidelity_file.py" "$OUT/overhead_fidelity.json" --results "$OUT" 2>&1 | tee -a "$LOG"
fi

if want floor; then
  # where kernel activity's cost lands (issue 15, part 1): CPU inside the launch
  # calls (timed by the hooks), GPU time added per kernel (a CUDA graph under
  # CUPTI), CUPTI's own overhead records; decode step and a one-op loop
  say "floor split"
  HOOKS=$(python3 -c "import skipnative; print(skipnative.launch_hooks_library())")
  PYTHONUNBUFFERED=1 LD_PRELOAD="$HOOKS" timeout "${FLOOR_TIMEOUT:-180}" python3 "$REPO/bench/floor_split.py" \
    --blocks "${FLOOR_BLOCKS:-3}" --json "$OUT/floor.json" 2>&1 | tail -12 | tee -a "$LOG"
fi

if want incomplete; then
  # a stop, and an on-demand window's close, while spin kernels run: records of
  # unfinished work counted as dropped.incomplete, none kept with a wrong end
  say "records of work running at a stop"
  PYTHONUNBUFFERED=1 timeout 120 python3 "$REPO/bench/gpu_incomplete.py" 2>&1 | tail -40 | tee -a "$LOG"
fi

if want tests; then
  say "tests/gpu"
  PYTHONUNBUFFERED=1 timeout 300 python3 -m pytest -q -p no:cacheprovider "$REPO/tests/gpu" -rfEs --tb=short 2>&1 | tee "$OUT/tests_gpu.txt" | tail -25 | tee -a "$LOG"
  say "tests/native (test doubles, own process)"
  timeout 180 python3 -m pytest -q -p no:cacheprovider "$REPO/tests/native" 2>&1 | tail -5 | tee -a "$LOG"
fi

if want launch; then
  say "launch microbenchmarks"
  PYTHONUNBUFFERED=1 timeout 120 python3 "$REPO/bench/launch.py" --out "$OUT" 2>&1 | tee -a "$LOG"
fi

if want overhead; then
  say "overhead"
  PYTHONUNBUFFERED=1 timeout 300 python3 "$REPO/bench/gpu_overhead.py" --json "$OUT/overhead.json" 2>&1 | tail -20 | tee -a "$LOG"
fi

if want sweep; then
  say "sweep (skip sweep, eager) and its report"
  PYTHONUNBUFFERED=1 timeout "${SWEEP_TIMEOUT:-300}" skip sweep --fidelity 20 --out "$OUT/sweep" 2>&1 | tail -3 | tee -a "$LOG"
  skip report "$OUT/sweep" 2>&1 | tee -a "$LOG"
  tar czf "$OUT/sweep.tgz" -C "$OUT" sweep 2>>"$LOG"
fi
if want graphs; then
  say "sweep with CUDA graphs"
  PYTHONUNBUFFERED=1 timeout "${SWEEP_TIMEOUT:-240}" skip sweep --graphs --no-attribution \
    --batch-sizes "${GRAPH_BATCHES:-1,2,4,8,16}" --out "$OUT/graphs" 2>&1 | tail -3 | tee -a "$LOG"
  if want sweep; then
    say "what-if --graphs from the eager sweep, against the measured graph sweep"
    skip whatif "$OUT/sweep" --graphs 2>&1 | tee -a "$LOG"
    skip whatif "$OUT/graphs" 2>&1 | tee -a "$LOG"
  fi
  tar czf "$OUT/graphs.tgz" -C "$OUT" graphs 2>>"$LOG"
fi
rm -rf "$OUT/sweep" "$OUT/graphs"

if want afterstop; then
  say "after stop (fresh processes)"
  PYTHONUNBUFFERED=1 timeout 180 python3 "$REPO/bench/gpu_after_stop.py" --processes 4 --json "$OUT/after_stop.json" 2>&1 | tee -a "$LOG"
fi

if want record; then
  say "record path"
  timeout 120 python3 "$REPO/bench/record_path.py" --repeats 5 2>&1 | tee -a "$LOG"
  python3 "$REPO/bench/record_path.py" --repeats 5 --json >"$OUT/record_path.json" 2>>"$LOG"
fi

if want run; then
  # skip run (injection at cuInit) against the in-process timing pass: same
  # kernels, per-launch overhead within 10 %; and --on-demand idle cost
  say "skip run against the in-process capture"
  PYTHONUNBUFFERED=1 timeout 300 python3 "$REPO/bench/run_check.py" 2>&1 | tee -a "$LOG"
fi

if want exitcheck; then
  # the launch bench once aborted at exit after its torch.profiler block (3 of 6
  # runs on an H100); it now leaves its module loaded: does any run still abort?
  say "launch bench exit status, 6 runs"
  for i in 1 2 3 4 5 6; do
    timeout 60 python3 "$REPO/bench/launch.py" --iters 1000 --out /tmp/exitcheck >/tmp/exitcheck.log 2>&1
    echo "run $i: exit $? $(grep -m1 -o 'double free[^)]*)\|corruption[^)]*)' /tmp/exitcheck.log)" | tee -a "$LOG"
  done
fi

say "done"
