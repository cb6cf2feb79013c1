"""What the GPU commands need before they start."""

from __future__ import annotations

from skipnative.cli._common import UserError


def gpu_reason() -> str | None:
    """None when capture can run here; else why not, in one line."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install torch)"
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    import skipnative

    ok, why = skipnative.available()
    return None if ok else why


def require_gpu(command: str) -> None:
    why = gpu_reason()
    if why is not None:
        raise UserError(f"skip {command} needs a GPU: {why}")
