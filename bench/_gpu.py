"""What the GPU benchmarks need, checked before they start: one line and exit
status 1 where it is missing, not a traceback."""

from __future__ import annotations

import sys


def require_cuda(script: str) -> None:
    try:
        import torch
    except ImportError:
        sys.exit(f"{script}: needs torch with CUDA (pip install torch)")
    if not torch.cuda.is_available():
        sys.exit(f"{script}: needs a CUDA GPU (torch {torch.__version__} sees none)")
