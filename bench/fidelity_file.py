"""fidelity.json from a gpu_overhead.py result: skipnative's configurations, the
kernel-activity-only floor and torch.profiler's, on one workload.

    {"card": str, "cupti": str, "workload": str,
     "rows": [{"config": str, "perturbation": float, "added_ns_per_launch": float | null}]}

perturbation is a fraction (0.12 = +12 %) of the workload's inference latency
unprofiled; added_ns_per_launch is the launch loop's added CPU time per launch.

    python bench/fidelity_file.py overhead.json [--workload NAME] [--results bench/results]
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

REQUIRED = (
    "unprofiled",
    "kernel_activity_only",
    "timing_pass",
    "timing_pass_hook",
    "torch_profiler",
)


def card_slug(device: str) -> str:
    """'NVIDIA H200' -> 'h200', 'NVIDIA H100 80GB HBM3' -> 'h100'."""
    m = re.search(r"\b([A-Z]{1,2}\d{2,4}[A-Z]?)\b", device)
    if m:
        return m.group(1).lower()
    return re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "gpu"


def fidelity_doc(res: dict, workload: str | None = None) -> dict:
    """The fidelity document of one gpu_overhead.py result (its --json)."""
    works = list(res["perturbation"])
    if not works:
        raise ValueError("the overhead result has no workload")
    w = workload or next((k for k in works if "decode" in k), works[-1])
    if w not in res["perturbation"]:
        raise ValueError(f"workload {w!r} not in the result (has {', '.join(works)})")
    pert, added = res["perturbation"][w], res.get("added_ns_per_launch", {})
    rows = [
        {
            "config": c,
            "perturbation": float(p),
            "added_ns_per_launch": None if added.get(c) is None else float(added[c]),
        }
        for c, p in pert.items()
        if not c.startswith("unprofiled_")
    ]
    missing = [c for c in REQUIRED if c not in pert]
    doc = {
        "card": res["device"],
        "cupti": str(res.get("cupti_version", "")),
        "workload": w,
        "rows": rows,
    }
    if missing:
        doc["missing"] = missing  # refused here, or not run
    if res.get("complete") is False:
        doc["complete"] = False  # the run was cut short: its finished blocks only
    if "hook_join" in res:
        doc["hook_join"] = res["hook_join"]  # did the hooks' launches join their kernels
    if "order_replay" in res:
        doc["order_replay"] = res["order_replay"]  # the order join on the timing pass's pairs
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("overhead_json")
    ap.add_argument("--workload")
    ap.add_argument("--results", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    args = ap.parse_args(argv)
    try:
        res = json.loads(Path(args.overhead_json).read_text())
        doc = fidelity_doc(res, args.workload)
    except (OSError, ValueError, KeyError) as e:
        print(f"fidelity_file.py: {args.overhead_json}: {e}", file=sys.stderr)
        return 1
    out = Path(args.results) / f"{card_slug(doc['card'])}-{args.date}" / "fidelity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
