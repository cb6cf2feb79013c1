"""skipnative: a low-overhead CUPTI profiler for LLM inference.

``available()`` says whether capture works here; ``capture()`` records launch
calls and GPU activity with skipnative's own CUPTI session; ``load()`` reads a
``.skip`` file or a torch.profiler (Kineto) trace; ``Trace.metrics()`` computes
the SKIP metrics (TKLQT and its parts, AKD, IL, GPU idle, CPU/GPU-bound);
``profile()`` runs a PyTorch workload's timing and attribution passes and
returns a ``Profile``.
"""

from skipnative.capturing.loader import available
from skipnative.capturing.session import Capture, CaptureError, capture, launch_hooks_library
from skipnative.errors import TraceError
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
