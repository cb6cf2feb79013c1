"""launch_records="hook" on a GPU: each test runs its own process with the launch
hooks preloaded (they must come before CUDA). Same launches and kernels as the
callbacks (runtime through torch, driver through cuLaunchKernel from Triton-style
dlsym is not exercised without Triton) and CUDA graphs, with either join: CUPTI's
external correlation records, or each stream's order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CODE = """
import json, sys, torch, skipnative
join = sys.argv[1]
x = torch.zeros(1024, device="cuda")
def work():
    for _ in range(50):
        x.add_(1.0)
    torch.cuda.synchronize()
work()
KEYS = ("launch_source", "launch_hook_fallback", "launches_unjoined", "hook_join",
        "work_unjoined", "pairs_checked", "launches_captured")
def summary(cap):
    t = cap.trace
    corr = set(int(c) for c in t.launches["correlation"] if c)
    return {
        "launches": len(t.launches), "kernels": len(t.gpu),
        "joined": sum(int(c) in corr for c in t.gpu["correlation"]),
        "meta": {k: cap.metadata.get(k) for k in KEYS},
    }
out = {}
for source in ("hook", "callbacks"):
    with skipnative.capture(launch_records=source, hook_join=join,
                            latency_timestamps=True) as cap:
        work()
    out[source] = summary(cap)
g = torch.cuda.CUDAGraph()
s = torch.cuda.Stream()
with skipnative.capture(launch_records="hook", hook_join=join) as cap:
    with torch.cuda.stream(s):  # a capture inside the window: its launches enqueue nothing
        x.add_(1.0)
        torch.cuda.synchronize()
        with torch.cuda.graph(g):
            for _ in range(10):
                x.add_(1.0)
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
out["graph"] = summary(cap)
print(json.dumps(out))
"""


def run_preloaded(code: str, *args: str) -> subprocess.CompletedProcess:
    from skipnative import launch_hooks_library

    env = {**os.environ, "LD_PRELOAD": launch_hooks_library()}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("join", ["external", "order"])
def test_hook_launches_join_every_kernel_like_the_callbacks(join):
    r = run_preloaded(CODE, join)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.splitlines()[-1])
    hook, cb = res["hook"], res["callbacks"]
    assert hook["meta"]["launch_source"] == "hook", hook["meta"]
    assert hook["meta"]["hook_join"] == join
    assert hook["meta"]["launches_unjoined"] == 0
    assert hook["kernels"] == cb["kernels"] >= 50
    assert hook["joined"] == hook["kernels"]
    graph = res["graph"]
    # the warm-up add and three replays of ten (at least): every kernel of the window joined
    assert graph["kernels"] >= 31 and graph["joined"] == graph["kernels"], graph
    if join == "order":
        # each single kernel's queued time inside its own call's span
        assert hook["meta"]["pairs_checked"] == hook["kernels"]
        assert hook["meta"]["work_unjoined"] == 0
        # the ten launches into the capturing stream enqueued nothing, and were told apart
        assert graph["meta"]["launches_captured"] >= 10, graph["meta"]
        assert graph["meta"]["launches_unjoined"] == 0 and graph["meta"]["work_unjoined"] == 0
