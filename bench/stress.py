"""A long load run through the CUPTI test double (tests/native/test_stress.py at scale).

N launches from T threads against a launch-buffer cap, with kernel activity on
(bounded activity-buffer pool and row cap); prints launches per second, peak
RSS growth against the caps, and checks that every launch is kept or counted.

    python bench/stress.py [--launches 100000000] [--threads 8] [--cap-mib 256]
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from skipnative import _native
from skipnative.testing import SimulatedGpu, library_path

os.environ.setdefault("SKIPNATIVE_CUPTI_LIBRARY", library_path())
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=100_000_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--cap-mib", type=int, default=256)
    ap.add_argument("--gpu-rows", type=int, default=2_000_000)
    args = ap.parse_args()
    info = _native.load_cupti([])
    if not info.get("test_double"):
        raise SystemExit(f"the CUPTI test double was not loaded: {info}")
    import skipnative

    gpu = SimulatedGpu(info["path"])
    gpu.reset()
    per = args.launches // args.threads
    base, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.02)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.perf_counter()
    with skipnative.capture(
        clock="library",
        max_launch_bytes=args.cap_mib << 20,
        activity_buffer_bytes=1 << 20,
        max_activity_buffers=8,
        max_gpu_records=args.gpu_rows,
    ) as cap:
        ts = [
            threading.Thread(target=gpu.launch_many, args=(per, "k", 10, i))
            for i in range(args.threads)
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        done.set()
        w.join()
    dt = time.perf_counter() - t0
    md = cap.metadata
    n = len(cap.raw()["launches"])
    total = per * args.threads
    assert n + md["dropped"]["launches"] == total
    print(
        f"{total:,} launches from {args.threads} threads in {dt:.1f} s "
        f"({total / dt / 1e6:.1f} M/s); kept {n:,}, dropped {md['dropped']['launches']:,}; "
        f"GPU rows kept {len(cap.raw()['kernels']):,}, dropped "
        f"{md['dropped']['gpu_rows'] + md['dropped']['cupti']:,}; "
        f"peak RSS growth while capturing {(peak[0] - base) / 2**20:.0f} MiB "
        f"(launch cap {args.cap_mib} MiB)"
    )


if __name__ == "__main__":
    main()
