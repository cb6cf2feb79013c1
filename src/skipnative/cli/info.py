"""`skip info`: whether capture works here, and why."""

from __future__ import annotations

import json
import platform
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="report whether capture is available here and why")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=run)


def run(args) -> int:
    import skipnative
    from skipnative import _native

    ok, why = skipnative.available()
    clock = _native.clock_info("auto")
    out = {
        "skipnative": skipnative.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "capture_available": ok,
        "reason": why,
        "clock": clock["kind"],
        "clock_ticks_per_second": clock["ticks_per_second"],
        # optional CUPTI entry points, by the capture options that need them
        "cupti_features": dict(_native.cupti_features()),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"skipnative {out['skipnative']} (Python {out['python']}, {out['machine']})")
        print(f"capture:  {'available' if ok else 'unavailable'}")
        print(f"  {why}")
        print(f"clock:    {clock['kind']} ({clock['ticks_per_second'] / 1e9:.4f} GHz)")
        feats = out["cupti_features"]
        if feats:
            label = {"hw_trace": "hw_trace (Blackwell GPUs)"}
            has = [label.get(k, k) for k, v in feats.items() if v]
            lacks = [k for k, v in feats.items() if not v]
            print(
                f"cupti:    {', '.join(has) or 'none of the optional features'}"
                + (f" (missing: {', '.join(lacks)})" if lacks else "")
            )
    return 0
