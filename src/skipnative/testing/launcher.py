"""A small CUDA program on the simulated GPU, for trying ``skip run`` without one.

``python -m skipnative.testing.launcher N [--threads T] [--workers W]`` loads
the CUDA driver and runtime doubles (:func:`skipnative.testing.simulate_cuda`),
initialises CUDA (``cuInit``: the driver double loads ``CUDA_INJECTION64_PATH``
there, as the real driver does) and launches N null kernels through the runtime
double's ``cudaLaunchKernel``, split over T threads, each on its own stream.
With ``--workers W`` it starts W child processes that each do so (with
``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` set, as torchrun does) and initialises
no CUDA itself.

``--batches B`` repeats the launches B times, kernels of batch b named
``kernel_b<b>``; with ``--gate DIR`` each process writes ``DIR/done<b>-<rank>``
(holding its pid) after batch b and waits for ``DIR/go<b+1>`` before the next,
so a test can act between batches. ``--hold S`` sleeps S seconds before exit;
``--hold-subscriber`` makes the simulated CUPTI report another subscriber;
``--flush-delay S`` makes each of its activity flushes take S seconds (a capture
slow to stop); ``--fail-allocations WHAT`` makes every one of skipnative's
allocations named WHAT fail, as out of memory (SimulatedGpu.fail_allocations);
``--waits`` ends with an event recorded on the first stream, a new stream made
to wait for it (cudaStreamWaitEvent) and one kernel, ``after_wait``, there.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_PTX = b""".version 8.0
.target sm_80
.address_size 64
.visible .entry %s()
{
  ret;
}
"""


class _Dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m skipnative.testing.launcher", description=__doc__)
    p.add_argument("n", type=int, help="kernels per worker (per batch)")
    p.add_argument("--threads", type=int, default=1, help="launching threads per worker")
    p.add_argument("--workers", type=int, default=0, help="child processes (0: this one)")
    p.add_argument("--batches", type=int, default=1)
    p.add_argument("--gate", help="folder of done/go files between batches")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to sleep before exit")
    p.add_argument("--hold-subscriber", action="store_true")
    p.add_argument("--flush-delay", type=float, default=0.0, help="seconds each flush takes")
    p.add_argument("--kernel-ns", type=int, default=3000, help="GPU time of each kernel")
    p.add_argument("--fail-allocations", metavar="WHAT", help="skipnative's allocations to fail")
    p.add_argument(
        "--waits", action="store_true", help="end with a kernel on a stream made to wait"
    )
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _check(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"launcher: {what} failed with CUDA error {code}")


class _Cuda:
    """The driver and runtime doubles, through ctypes."""

    def __init__(
        self, kernel_ns: int, hold_subscriber: bool, flush_delay_s: float = 0.0, fail: str = ""
    ):
        from skipnative.testing import _DRIVER, _RUNTIME, library_path, simulate_cuda

        sim = simulate_cuda()
        sim.configure(launch_cost_ns=2000, submit_latency_ns=1000, real_time=True)
        sim.set_kernel_ns(kernel_ns)
        sim.hold_subscriber(hold_subscriber)
        sim.flush_delay(int(flush_delay_s * 1e9))
        if fail:
            sim.fail_allocations(fail)
        # An injected session (skip run) must find this simulated CUPTI, not a
        # real libcupti of an nvidia-cuda-cupti wheel.
        os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = library_path()
        opts = os.environ.get("SKIPNATIVE_RUN_OPTIONS", "").split(";")
        opts = [o for o in opts if not o.startswith("wheel_dirs=")]
        os.environ["SKIPNATIVE_RUN_OPTIONS"] = ";".join(opts)
        self.drv = ctypes.CDLL(library_path(_DRIVER), mode=ctypes.RTLD_GLOBAL)
        self.rt = ctypes.CDLL(library_path(_RUNTIME), mode=ctypes.RTLD_GLOBAL)
        _check(self.drv.cuInit(0), "cuInit")
        _check(self.rt.cudaSetDevice(0), "cudaSetDevice")
        self._lib = ctypes.c_void_p()
        self._kernels: dict[str, ctypes.c_void_p] = {}
        self._ptx: list[bytes] = []  # kept alive: the double keeps pointers into its text

    def kernel(self, name: str) -> ctypes.c_void_p:
        if name not in self._kernels:
            ptx = _PTX % name.encode()
            self._ptx.append(ptx)
            lib, k = ctypes.c_void_p(), ctypes.c_void_p()
            _check(
                self.rt.cudaLibraryLoadData(ctypes.byref(lib), ptx, None, None, 0, None, None, 0),
                "cudaLibraryLoadData",
            )
            _check(
                self.rt.cudaLibraryGetKernel(ctypes.byref(k), lib, name.encode()),
                "cudaLibraryGetKernel",
            )
            self._kernels[name] = k
        return self._kernels[name]

    def stream(self) -> ctypes.c_void_p:
        s = ctypes.c_void_p()
        _check(self.drv.cuStreamCreate(ctypes.byref(s), 0), "cuStreamCreate")
        return s

    def wait_then_launch(self, kernel, after: ctypes.c_void_p) -> None:
        """An event recorded on `after`, a new stream made to wait for it, and one
        kernel launched there (the simulated CUPTI's event calls, on the CUPTI
        stream ids the driver double gives its streams)."""
        from skipnative.testing import SimulatedGpu

        gpu = SimulatedGpu()
        waiting = self.stream()
        gpu.event_record(1, stream=_stream_id(after))
        gpu.stream_wait_event(1, stream=_stream_id(waiting))
        self.launch(kernel, waiting, 1)

    def launch(self, kernel: ctypes.c_void_p, stream: ctypes.c_void_p, n: int) -> None:
        dim = _Dim3(1, 1, 1)
        f = self.rt.cudaLaunchKernel
        f.argtypes = [ctypes.c_void_p, _Dim3, _Dim3, ctypes.c_void_p, ctypes.c_size_t]
        f.argtypes += [ctypes.c_void_p]
        for _ in range(n):
            _check(f(kernel, dim, dim, None, 0, stream), "cudaLaunchKernel")


def _stream_id(stream: ctypes.c_void_p) -> int:
    """The id the driver double gave a stream (the first field of its CUstream_st)."""
    return ctypes.c_uint32.from_address(int(stream.value or 0)).value


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"launcher: {path} did not appear within {timeout:.0f} s")
        time.sleep(0.005)


def _work(args) -> int:
    cuda = _Cuda(args.kernel_ns, args.hold_subscriber, args.flush_delay, args.fail_allocations)
    streams = [cuda.stream() for _ in range(max(args.threads, 1))]
    gate = Path(args.gate) if args.gate else None
    for b in range(args.batches):
        if gate is not None and b > 0:
            _wait_for(gate / f"go{b}")
        kernel = cuda.kernel(f"kernel_b{b}")
        shares = [args.n // len(streams) + (i < args.n % len(streams)) for i in range(len(streams))]
        threads = [
            threading.Thread(target=cuda.launch, args=(kernel, s, k))
            for s, k in zip(streams, shares)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if gate is not None:
            done = gate / f"done{b}-{args.rank}"
            done.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(done.with_suffix(".tmp"), done)
    if args.waits:
        cuda.wait_then_launch(cuda.kernel("after_wait"), streams[0])
    if args.hold > 0:
        time.sleep(args.hold)
    return 0


def _spawn(args, argv: list[str]) -> int:
    children = []
    for rank in range(args.workers):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(args.workers))
        cmd = [sys.executable, "-m", "skipnative.testing.launcher", *argv, "--workers", "0"]
        children.append(subprocess.Popen([*cmd, "--rank", str(rank)], env=env))
    codes = [c.wait() for c in children]
    bad = [(r, c) for r, c in enumerate(codes) if c != 0]
    for r, c in bad:
        print(f"launcher: worker {r} exited with {c}", file=sys.stderr)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.n < 0 or args.threads < 1 or args.workers < 0 or args.batches < 1:
        raise SystemExit("launcher: N >= 0, --threads >= 1, --workers >= 0, --batches >= 1")
    try:
        if args.workers > 0:
            return _spawn(args, argv)
        return _work(args)
    except KeyboardInterrupt:  # Ctrl-C: ends by SIGINT at once, as Python does, untraced
        print("launcher: interrupted", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 128 + signal.SIGINT  # not reached


if __name__ == "__main__":
    sys.exit(main())
