"""launch_records="hook" on a GPU: each test runs its own process with the launch
hooks preloaded (they must come before CUDA). Same launches and kernels as the
callbacks (runtime through torch, driver through cuLaunchKernel from Triton-style
dlsym is not exercised without Triton) and CUDA graphs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CODE = """
import json, torch, skipnative
x = torch.zeros(1024, device="cuda")
def work():
    for _ in range(50):
        x.add_(1.0)
    torch.cuda.synchronize()
work()
KEYS = ("launch_source", "launch_hook_fallback", "launches_unjoined")
out = {}
for source in ("hook", "callbacks"):
    with skipnative.capture(launch_records=source) as cap:
        work()
    t = cap.trace
    corr = set(int(c) for c in t.launches["correlation"])
    out[source] = {
        "launches": len(t.launches), "kernels": len(t.gpu),
        "joined": sum(int(c) in corr for c in t.gpu["correlation"]),
        "meta": {k: cap.metadata[k] for k in KEYS},
    }
g = torch.cuda.CUDAGraph()
s = torch.cuda.Stream()
with torch.cuda.stream(s):
    x.add_(1.0)
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        for _ in range(10):
            x.add_(1.0)
with skipnative.capture(launch_records="hook") as cap:
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
t = cap.trace
corr = set(int(c) for c in t.launches["correlation"])
out["graph"] = {"kernels": len(t.gpu), "joined": sum(int(c) in corr for c in t.gpu["correlation"])}
print(json.dumps(out))
"""


def run_preloaded(code: str) -> subprocess.CompletedProcess:
    from skipnative import launch_hooks_library

    env = {**os.environ, "LD_PRELOAD": launch_hooks_library()}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_hook_launches_join_every_kernel_like_the_callbacks():
    r = run_preloaded(CODE)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.splitlines()[-1])
    hook, cb = res["hook"], res["callbacks"]
    assert hook["meta"]["launch_source"] == "hook", hook["meta"]
    assert hook["meta"]["launches_unjoined"] == 0
    assert hook["kernels"] == cb["kernels"] >= 50
    assert hook["joined"] == hook["kernels"]
    assert res["graph"]["kernels"] == 30 and res["graph"]["joined"] == 30
