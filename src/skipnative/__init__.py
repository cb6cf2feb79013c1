"""skipnative: a low-overhead CUPTI profiler for LLM inference.

``available()`` says whether capture works here; ``capture()`` records launch
calls and GPU activity with skipnative's own CUPTI session; ``load()`` reads a
``.skip`` file or a torch.profiler (Kineto) trace; ``Trace.metrics()`` computes
the SKIP metrics (TKLQT and its parts, AKD, IL, GPU idle, CPU/GPU-bound);
``profile()`` runs a PyTorch workload's timing and attribution passes and
returns a ``Profile``.

The names are imported on first use, so that a command that needs only some of
them (``skip analyze``) does not pay for the others' imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skipnative.errors import TraceError

if TYPE_CHECKING:
    from skipnative.capturing.loader import available
    from skipnative.capturing.session import (
        Capture,
        CaptureError,
        capture,
        launch_hooks_library,
    )
    from skipnative.io import load
    from skipnative.profiling import Profile, profile
    from skipnative.trace import Trace

__version__ = "0.1.0"

__all__ = [
    "Capture",
    "CaptureError",
    "Profile",
    "Trace",
    "TraceError",
    "__version__",
    "available",
    "capture",
    "launch_hooks_library",
    "load",
    "profile",
]


def __getattr__(name: str) -> Any:
    value: Any
    if name == "available":
        from skipnative.capturing import loader

        value = loader.available
    elif name in ("Capture", "CaptureError", "capture", "launch_hooks_library"):
        from skipnative.capturing import session

        value = getattr(session, name)
    elif name == "load":
        from skipnative import io

        value = io.load
    elif name in ("Profile", "profile"):
        from skipnative import profiling

        value = getattr(profiling, name)
    elif name == "Trace":
        from skipnative import trace

        value = trace.Trace
    else:
        raise AttributeError(f"module 'skipnative' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
