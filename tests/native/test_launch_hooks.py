"""launch_records="hook": the driver's entry points wrapped where libraries resolve
them, on the CUDA driver and runtime doubles.

The hooks library must be preloaded before the process loads CUDA, so every test
runs its own process with LD_PRELOAD. The runtime double resolves the driver's
cuLaunchKernel through cuGetProcAddress (found with dlsym on libcuda), as CUDA's
runtime does; the launch benchmarks' driver path resolves through dlsym.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap

import pytest

import skipnative
from skipnative import launch_hooks_library

PREAMBLE = """
import json, sys, ctypes
sys.modules["torch"] = None
from skipnative.testing import simulate_cuda
sim = simulate_cuda()
sim.reset()
sim.configure(launch_cost_ns=3000, submit_latency_ns=1000)
sim.set_kernel_ns(2000)
import skipnative
from skipnative import _native
"""

# Launches through both doubles: the runtime path (cudaLaunchKernel, whose driver
# call came from cuGetProcAddress) and the driver path (cuLaunchKernel and
# cuGraphLaunch from dlsym), then a sync.
WORK = """
PTX = b'.version 8.0\\n.target sm_90\\n.entry nullk()\\n{ ret; }\\n'
cuda = ctypes.CDLL("libcuda.so.1")
dlsym = ctypes.CDLL(None).dlsym
dlsym.restype = ctypes.c_void_p
dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
def fn(name, *args):
    return ctypes.CFUNCTYPE(ctypes.c_int, *args)(dlsym(cuda._handle, name))
vp = ctypes.c_void_p
launch = fn(b"cuLaunchKernel", vp, *[ctypes.c_uint] * 7, vp, vp, vp)
graph_launch = fn(b"cuGraphLaunch", vp, vp)
sync = fn(b"cuStreamSynchronize", vp)
mod, f, stream, g, ge = vp(), vp(), vp(), vp(), vp()
assert cuda.cuInit(0) == 0
assert cuda.cuModuleLoadData(ctypes.byref(mod), PTX) == 0
assert cuda.cuModuleGetFunction(ctypes.byref(f), mod, b"nullk") == 0
assert cuda.cuStreamCreate(ctypes.byref(stream), 0) == 0
rt = ctypes.CDLL("libcudart.so.13")
lib, kern = vp(), vp()
assert rt.cudaLibraryLoadData(ctypes.byref(lib), PTX, None, None, 0, None, None, 0) == 0
assert rt.cudaLibraryGetKernel(ctypes.byref(kern), lib, b"nullk") == 0
class dim3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint), ("y", ctypes.c_uint), ("z", ctypes.c_uint)]
rt.cudaLaunchKernel.argtypes = [vp, dim3, dim3, vp, ctypes.c_size_t, vp]
def work(n=3):
    for _ in range(n):
        assert rt.cudaLaunchKernel(kern, dim3(1, 1, 1), dim3(1, 1, 1), None, 0, stream) == 0
        assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 0
    assert cuda.cuStreamBeginCapture_v2(stream, 0) == 0
    assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 0
    assert cuda.cuStreamEndCapture(stream, ctypes.byref(g)) == 0
    assert cuda.cuGraphInstantiateWithFlags(ctypes.byref(ge), g, 0) == 0
    assert graph_launch(ge, stream) == 0
    assert sync(stream) == 0
"""


def run(code: str, preload: bool = True, head: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = launch_hooks_library()
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", PREAMBLE + WORK + head + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


CAPTURE = """
def capture(**opts):
    with skipnative.capture(clock="library", **opts) as cap:
        work()
    t = cap.trace
    rows = [
        [int(x) for x in (r["t_begin"], r["t_end"], r["correlation"])]
        for r in t.launches
    ]
    gpu = sorted(int(c) for c in t.gpu["correlation"])
    names = [t.strings[i] for i in t.launches["name_id"]]
    return {"rows": rows, "gpu": gpu, "names": names, "meta": cap.metadata}
"""


def test_hook_rows_match_the_callbacks_and_join_every_kernel():
    r = run(
        head=CAPTURE,
        code="""
        hook = capture(launch_records="hook")
        cb = capture(launch_records="callbacks")
        print(json.dumps({"hook": hook, "cb": cb}))
        """,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    hook, cb = res["hook"], res["cb"]
    assert hook["meta"]["launch_source"] == "hook"
    assert hook["meta"]["launch_hook_fallback"] == ""
    assert hook["meta"]["launches_unjoined"] == 0
    # external correlation records come only ahead of API records (the double
    # follows CUPTI's documentation): the hook capture asks for those per call
    assert hook["meta"]["hook_api_records"] == "per call"
    assert cb["meta"]["hook_api_records"] == ""
    # no callback enabled; every row from the hooks
    assert cb["meta"]["launch_source"] == "callbacks"

    # the same calls, the same spans (each pair of captures runs the same work
    # on the virtual clock, so compare durations and order, not absolute times)
    def spans(x):
        return [e - b for b, e, _ in x["rows"]]

    assert spans(hook) == spans(cb)
    assert len(hook["rows"]) == len(cb["rows"]) == 3 * 2 + 1 + 1 + 1
    # the runtime launches: the driver entry point cudart resolved, by name
    assert hook["names"].count("cuLaunchKernel") == 3 * 2 + 1
    assert cb["names"].count("cudaLaunchKernel") == 3
    assert "cuGraphLaunch" in hook["names"] and "cuStreamSynchronize" in hook["names"]
    # joined exactly: every kernel's correlation id is a launch row's
    hook_corr = {c for _, _, c in hook["rows"]}
    assert hook["gpu"] and set(hook["gpu"]) <= hook_corr
    assert len(hook["gpu"]) == len(cb["gpu"])


def test_without_the_preload_the_capture_says_so_and_uses_callbacks():
    r = run(
        head=CAPTURE,
        code="""
        res = capture(launch_records="hook")
        print(json.dumps(res))
        """,
        preload=False,
    )
    assert r.returncode == 0, r.stderr
    assert "launch_records='hook' not possible" in r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["meta"]["launch_source"] == "callbacks"
    assert "not loaded in this process" in res["meta"]["launch_hook_fallback"]
    assert res["names"].count("cudaLaunchKernel") == 3  # the callbacks' rows


def test_hooks_loaded_after_libcuda_fall_back():
    r = run(
        head=CAPTURE,
        code=f"""
        ctypes.CDLL({launch_hooks_library()!r}, mode=ctypes.RTLD_GLOBAL)
        res = capture(launch_records="hook")
        print(json.dumps(res))
        """,
        preload=False,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["meta"]["launch_source"] == "callbacks"
    assert "loaded after libcuda" in res["meta"]["launch_hook_fallback"]


def test_hooks_pass_calls_through_while_no_session_is_attached():
    r = run(
        """
        work()
        hooks = ctypes.CDLL(None)
        print(json.dumps([hooks.skipnative_hooks_wrapped(), hooks.skipnative_hooks_unwrapped()]))
        """
    )
    assert r.returncode == 0, r.stderr
    wrapped, unwrapped = json.loads(r.stdout.splitlines()[-1])
    # cuLaunchKernel (dlsym and cuGetProcAddress), cuGraphLaunch, cuStreamSynchronize
    assert wrapped >= 4 and unwrapped == 0


def test_hook_path_cost_is_measured_without_a_gpu():
    r = run(
        """
        ns = _native.bench_hook_path(200000)
        base = _native.bench_record_path(200000)
        print(json.dumps([ns, base]))
        """
    )
    assert r.returncode == 0, r.stderr
    ns, base = json.loads(r.stdout.splitlines()[-1])
    assert 0 < ns < 100_000 and 0 < base < 100_000


@pytest.mark.parametrize("source", ["hook"])
def test_hook_is_a_capture_option(source):
    from skipnative import _native

    assert _native.capture_options()["launch_records"] == "callbacks"
    _native.Session({"launch_records": source})  # accepted


# dlsym resolves RTLD_DEFAULT and RTLD_NEXT from its caller's scope. The driver
# double, loaded RTLD_LOCAL, has its dependency (the CUPTI double) in its own
# scope only: a lookup from inside it finds the dependency's symbols, with the
# hooks' dlsym in between as without it.
SCOPE = """
import ctypes, json
from skipnative.testing import library_path, _DRIVER
drv = ctypes.CDLL(library_path(_DRIVER), mode=ctypes.RTLD_LOCAL)
probe = drv.skipnative_cuda_double_dlsym
probe.restype = ctypes.c_void_p
probe.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
RTLD_NEXT = ctypes.c_void_p(-1)
print(json.dumps({
    "default": bool(probe(None, b"skipnative_double_clock_ns")),
    "next": bool(probe(RTLD_NEXT, b"skipnative_double_clock_ns")),
    # a wrapped name: the driver double's own, in its scope; never its own as "next"
    "default_wrapped": bool(probe(None, b"cuLaunchKernel")),
    "next_wrapped": bool(probe(RTLD_NEXT, b"cuLaunchKernel")),
}))
"""


@pytest.mark.parametrize("preload", [False, True])
def test_dlsym_keeps_the_callers_scope(preload):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = launch_hooks_library()
    r = subprocess.run(
        [sys.executable, "-c", SCOPE], capture_output=True, text=True, timeout=60, env=env
    )
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout.splitlines()[-1])
    assert found == {"default": True, "next": True, "default_wrapped": True, "next_wrapped": False}


def test_the_hooks_wrap_every_driver_entry_point_the_callbacks_record():
    from skipnative import _native

    hooks = ctypes.CDLL(launch_hooks_library())  # RTLD_LOCAL: interposes nothing here
    hooks.skipnative_hooks_name.restype = ctypes.c_char_p
    hooks.skipnative_hooks_name.argtypes = [ctypes.c_uint32]
    wrapped = set()
    while (name := hooks.skipnative_hooks_name(len(wrapped))) is not None:
        wrapped.add(name.decode())
    recorded = {name for domain, _, _, name in _native.api_table() if domain == 1}
    assert recorded - wrapped == set()  # a driver call the callbacks see, missed by the hooks
    assert wrapped - recorded == set()  # a hooked call of no kind


def test_an_entry_point_without_a_ptsz_variant_is_wrapped_for_per_thread_callers():
    # a library built for the per-thread default stream asks cuGetProcAddress for
    # every entry point with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM; where
    # there is no _ptsz variant (cuCtxSynchronize) the driver returns the legacy one
    r = run(
        head=CAPTURE,
        code="""
        proc = fn(b"cuGetProcAddress_v2", ctypes.c_char_p, ctypes.POINTER(vp), ctypes.c_int,
                  ctypes.c_uint64, vp)
        ptr = vp()
        assert proc(b"cuCtxSynchronize", ctypes.byref(ptr), 13000, 2, None) == 0
        ctx_sync = ctypes.CFUNCTYPE(ctypes.c_int)(ptr.value)
        with skipnative.capture(clock="library", launch_records="hook") as cap:
            assert ctx_sync() == 0
        names = [cap.trace.strings[i] for i in cap.trace.launches["name_id"]]
        print(json.dumps(names))
        """,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == ["cuCtxSynchronize"]


def test_cuGetProcAddress_asked_for_itself_hands_out_the_wrapper():
    # a library that found cuGetProcAddress (v1) with dlsym asks it for
    # "cuGetProcAddress" at CUDA 12 or later, which is cuGetProcAddress_v2: its
    # lookups from then on go through that one
    r = run(
        head=CAPTURE,
        code="""
        v1 = fn(b"cuGetProcAddress", ctypes.c_char_p, ctypes.POINTER(vp), ctypes.c_int,
                ctypes.c_uint64)
        p = vp()
        assert v1(b"cuGetProcAddress", ctypes.byref(p), 13000, 0) == 0
        v2 = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(vp), ctypes.c_int,
                              ctypes.c_uint64, vp)(p.value)
        assert v2(b"cuStreamSynchronize", ctypes.byref(p), 13000, 0, None) == 0
        stream_sync = ctypes.CFUNCTYPE(ctypes.c_int, vp)(p.value)
        with skipnative.capture(clock="library", launch_records="hook") as cap:
            assert stream_sync(stream) == 0
        names = [cap.trace.strings[i] for i in cap.trace.launches["name_id"]]
        print(json.dumps(names))
        """,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == ["cuStreamSynchronize"]


# hook_join="order": no external correlation, no API record; each call's stream
# looked up once, calls and GPU work paired in each stream's order.
ORDER = """
from skipnative.testing import library_path, _DOUBLE, _DRIVER
lib = ctypes.CDLL(library_path(_DOUBLE))
lib.skipnative_double_stream_lookups.restype = ctypes.c_uint64
lib.skipnative_double_api_records_enabled.restype = ctypes.c_uint64
drv = ctypes.CDLL(library_path(_DRIVER))
queries = lambda: drv.skipnative_cuda_double_live(2, 0)

def order_capture(**opts):
    with skipnative.capture(clock="library", launch_records="hook", hook_join="order",
                            **opts) as cap:
        work()
        during = {"api_records": lib.skipnative_double_api_records_enabled(),
                  "external_kind": lib.skipnative_double_kind_enabled(49)}
    return summary(cap, during)

def summary(cap, during=None):
    t = cap.trace
    per_launch = [int((t.gpu["correlation"] == c).sum()) if c else 0
                  for c in t.launches["correlation"]]
    # each call, in order, with the names of the GPU work joined to it
    work = [sorted(t.strings[i] for i in t.gpu["name_id"][t.gpu["correlation"] == c]) if c else []
            for c in t.launches["correlation"]]
    return {"per_launch": per_launch, "gpu": len(t.gpu), "meta": cap.metadata, "work": work,
            "names": [t.strings[i] for i in t.launches["name_id"]], "during": during,
            "joined": sorted(set(int(c) for c in t.launches["correlation"] if c)),
            "gpu_corr": sorted(set(int(c) for c in t.gpu["correlation"]))}
"""


def _order_run(code: str) -> dict:
    r = run(head=CAPTURE + ORDER, code=code)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_order_join_pairs_every_call_with_its_work_without_cupti_records():
    res = _order_run(
        """
        order = order_capture(latency_timestamps=True)
        with skipnative.capture(clock="library", latency_timestamps=True) as cap:
            work()
        cb = summary(cap)
        lookups = lib.skipnative_double_stream_lookups()
        print(json.dumps({"order": order, "cb": cb, "lookups": lookups}))
        """
    )
    order, cb = res["order"], res["cb"]
    meta = order["meta"]
    # call by call, the same work as the callbacks joined (CUPTI's correlation ids)
    assert order["work"] == cb["work"]
    assert meta["launch_source"] == "hook" and meta["hook_join"] == "order"
    assert meta["launch_hook_fallback"] == ""
    # nothing of CUPTI's beyond the GPU activity while it captured
    assert order["during"] == {"api_records": 0, "external_kind": 0}
    assert meta["hook_api_records"] == ""
    # every GPU row joined to a call, every call with work joined
    assert order["joined"] == order["gpu_corr"] and order["gpu"] == cb["gpu"]
    assert meta["launches_unjoined"] == 0 and meta["work_unjoined"] == 0
    # the launch into the capturing stream enqueued nothing and is said so
    assert meta["launches_captured"] == 1
    # each kernel of a single-kernel launch carries a queued time inside its call
    assert meta["pairs_checked"] == 3 * 2
    # one stream, one thread: one lookup, then the cache
    assert res["lookups"] == 1


def test_order_join_without_queued_times_pairs_by_order_and_kind():
    res = _order_run(
        """
        print(json.dumps(order_capture(latency_timestamps=False)))
        """
    )
    meta = res["meta"]
    assert res["joined"] == res["gpu_corr"]
    assert meta["pairs_checked"] == 0 and meta["launches_unjoined"] == 0
    # the calls with work: 6 single kernels, then the graph's 1 kernel (the
    # launch in the capture has none), in the order the calls were made
    kinds = [n for n, k in zip(res["names"], res["per_launch"]) if k]
    assert kinds == ["cuLaunchKernel"] * 6 + ["cuGraphLaunch"]


def test_a_stream_destroyed_and_made_again_is_looked_up_again():
    res = _order_run(
        """
        with skipnative.capture(clock="library", launch_records="hook", hook_join="order",
                                latency_timestamps=True) as cap:
            for _ in range(3):
                s = vp()
                assert cuda.cuStreamCreate(ctypes.byref(s), 0) == 0
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, s, None, None) == 0
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, s, None, None) == 0
                assert sync(s) == 0
                assert cuda.cuStreamDestroy_v2(s) == 0
        t = cap.trace
        print(json.dumps({"lookups": lib.skipnative_double_stream_lookups(),
                          "streams": sorted(set(int(x) for x in t.gpu["stream"])),
                          "meta": cap.metadata,
                          "joined": sorted(int(c) for c in t.launches["correlation"] if c),
                          "gpu_corr": sorted(int(c) for c in t.gpu["correlation"])}))
        """
    )
    assert len(res["streams"]) == 3
    assert res["lookups"] == 3  # each new stream once, whatever its handle
    assert res["joined"] == res["gpu_corr"] and len(res["gpu_corr"]) == 6
    assert res["meta"]["launches_unjoined"] == 0 and res["meta"]["pairs_checked"] == 6


def test_streams_are_asked_whether_they_capture_only_while_a_capture_is_open():
    res = _order_run(
        """
        before = queries()
        with skipnative.capture(clock="library", launch_records="hook", hook_join="order"):
            for _ in range(5):
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 0
            assert sync(stream) == 0
        idle = queries() - before
        work()  # one launch into a capturing stream, between its begin and end
        print(json.dumps({"idle": idle, "open": queries() - before - idle}))
        """
    )
    assert res["idle"] == 0
    assert res["open"] == 0  # no sink attached: the hooks pass calls straight through
    res = _order_run(
        """
        before = queries()
        r = order_capture()
        captured = r["meta"]["launches_captured"]
        print(json.dumps({"queries": queries() - before, "captured": captured}))
        """
    )
    assert res == {"queries": 1, "captured": 1}


def test_threads_on_their_own_streams_are_each_joined():
    res = _order_run(
        """
        import threading
        def worker(n):
            s = vp()
            assert cuda.cuStreamCreate(ctypes.byref(s), 0) == 0
            for _ in range(n):
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, s, None, None) == 0
            assert sync(s) == 0
        with skipnative.capture(clock="library", launch_records="hook", hook_join="order",
                                latency_timestamps=True) as cap:
            ts = [threading.Thread(target=worker, args=(50,)) for _ in range(4)]
            for t in ts: t.start()
            for t in ts: t.join()
        t = cap.trace
        print(json.dumps({"meta": cap.metadata, "kernels": len(t.gpu),
                          "joined": sorted(int(c) for c in t.launches["correlation"] if c),
                          "gpu_corr": sorted(int(c) for c in t.gpu["correlation"]),
                          "threads": len(set(int(x) for x in t.launches["tid"]))}))
        """
    )
    assert res["kernels"] == 200 and res["threads"] == 4
    assert res["joined"] == res["gpu_corr"]
    assert res["meta"]["pairs_checked"] == 200 and res["meta"]["launches_unjoined"] == 0


def test_hook_join_is_checked():
    from skipnative import _native

    with pytest.raises(ValueError, match="hook_join='order' needs launch_records='hook'"):
        skipnative.capture(hook_join="order")

    assert _native.capture_options()["hook_join"] == "external"
    _native.Session({"hook_join": "order"})
    with pytest.raises(ValueError, match="hook_join: expected 'external' or 'order', not 'time'"):
        _native.Session({"hook_join": "time"})


def test_a_failed_call_enqueues_nothing_and_is_left_out_of_the_join():
    res = _order_run(
        """
        with skipnative.capture(clock="library", launch_records="hook", hook_join="order") as cap:
            assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 0
            drv.skipnative_cuda_double_fail(b"cuLaunchKernel", 700)  # an illegal address
            assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 700
            drv.skipnative_cuda_double_fail(b"cuLaunchKernel", 0)
            for _ in range(2):
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, stream, None, None) == 0
            assert sync(stream) == 0
        print(json.dumps(summary(cap)))
        """
    )
    # without queued times, order alone pairs them: the failed call is out of it
    assert res["work"] == [["nullk"], [], ["nullk"], ["nullk"], []]
    meta = res["meta"]
    assert meta["launches_failed"] == 1 and meta["launches_unjoined"] == 0
    assert meta["pairs_unverified"] == 0 and meta["work_unjoined"] == 0


def test_the_floor_splits_captures_time_launch_calls_on_the_double():
    # bench/floor_split.py on a GPU: the hooks time launch calls with CUPTI
    # recording nothing, then with kernel activity; checked here first
    bench = os.path.join(os.path.dirname(__file__), "..", "..", "bench")
    res = _order_run(
        f"""
        sys.path.insert(0, {os.path.abspath(bench)!r})
        import floor_split as fs
        out = {{}}
        for label, opts in (("alone", fs.HOOKS_ALONE), ("floor", fs.HOOKS_AND_FLOOR)):
            with skipnative.capture(clock="library", **opts) as cap:
                work()
            ln = cap.trace.launches
            calls = (ln["t_end"] - ln["t_begin"])[ln["kind"] == fs.KERNEL].tolist()
            out[label] = {{"calls": calls, "kernels": len(cap.trace.kernels),
                          "meta": cap.metadata}}
        with skipnative.capture(clock="library", **fs.FLOOR_WITH_OVERHEAD) as cap:
            work()
        out["overhead"] = {{"meta": cap.metadata}}
        print(json.dumps(out))
        """
    )
    alone, floor = res["alone"], res["floor"]
    assert alone["meta"]["launch_source"] == floor["meta"]["launch_source"] == "hook"
    # the double's launch calls cost the same either way: 3 + 3 + 1 kernel calls
    assert len(alone["calls"]) == len(floor["calls"]) == 7 and min(alone["calls"]) > 0
    assert alone["kernels"] == 0 and floor["kernels"] == 7
    # the double reports its instrumentation of each single-kernel launch
    assert res["overhead"]["meta"]["cupti_overhead"]["CUPTI_INSTRUMENTATION"]["count"] == 6


def test_the_null_legacy_and_per_thread_streams_are_told_apart():
    # the special handles are looked up with the thread's current context, and
    # CUPTI is asked for them as it documents: the NULL stream, legacy or own
    res = _order_run(
        """
        def on_all_streams():
            for s in (None, vp(1), vp(2), stream, None, vp(2)):
                assert launch(f, 1, 1, 1, 1, 1, 1, 0, s, None, None) == 0
            assert sync(stream) == 0
        with skipnative.capture(clock="library", launch_records="hook", hook_join="order",
                                latency_timestamps=True) as cap:
            on_all_streams()
        order = summary(cap)
        order["streams"] = [int(x) for x in cap.trace.gpu["stream"]]
        with skipnative.capture(clock="library", latency_timestamps=True) as cap:
            on_all_streams()
        cb = summary(cap)
        print(json.dumps({"order": order, "cb": cb,
                          "lookups": lib.skipnative_double_stream_lookups()}))
        """
    )
    order = res["order"]
    assert sorted(set(order["streams"])) == [7, 8, 100]  # legacy, the thread's own, a stream
    assert order["work"] == res["cb"]["work"]
    meta = order["meta"]
    assert meta["pairs_checked"] == 6 and meta["launches_unjoined"] == 0
    # NULL, legacy, per-thread and the stream: once each, and once more where the
    # created stream's handle falls in the slot of NULL or the per-thread handle
    # (the cache is direct-mapped by handle: a 1 in 16 chance; not caching: 6)
    assert res["lookups"] in (4, 5)


def test_a_hook_capture_that_saw_no_launch_while_kernels_ran_says_so():
    r = run(
        """
        with skipnative.capture(clock="library", launch_records="hook") as cap:
            sim.launch("k", 1000)  # straight to the simulated GPU: no driver entry point
        print(json.dumps([len(cap.trace.launches), len(cap.trace.kernels)]))
        """
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == [0, 1]
    assert "the launch hooks recorded no launch call while 1 kernels ran" in r.stderr
