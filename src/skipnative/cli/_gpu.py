"""What the GPU commands need before they start."""

from __future__ import annotations

from skipnative.cli._common import UserError


def gpu_reason() -> str | None:
    """None when capture can run here; else why not, in one line. With the CUPTI
    test double selected (SKIPNATIVE_CUPTI_LIBRARY), capture runs on its
    simulated GPU, and a --script workload can drive it."""
    from skipnative import _native
    from skipnative.capturing.loader import wheel_cupti_dirs

    if _native.load_cupti(wheel_cupti_dirs()).get("test_double"):
        return None
    try:
        import torch
    except ImportError:
        return "torch is not installed: pip install 'skipnative[torch]'"
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    import skipnative

    ok, why = skipnative.available()
    return None if ok else why


def require_gpu(command: str) -> None:
    why = gpu_reason()
    if why is not None:
        raise UserError(f"skip {command} needs a GPU: {why}")
