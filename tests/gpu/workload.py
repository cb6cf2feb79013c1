"""A small, deterministic torch workload shared by the GPU tests and their
torch.profiler subprocess: matmuls and elementwise ops."""

from __future__ import annotations


def make(device="cuda"):
    import torch

    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(256, 256, generator=g).to(device)
    w = torch.randn(256, 256, generator=g).to(device) / 16

    def step():
        y = x
        for _ in range(8):
            y = torch.relu(y @ w) + 1.0
            y = y * 0.5
        return y

    return step


def kineto_kernel_count(out_path: str, iters: int) -> None:
    """Runs the workload under torch.profiler and exports a chrome trace."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    step = make()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            step()
        torch.cuda.synchronize()
    prof.export_chrome_trace(out_path)


if __name__ == "__main__":
    import sys

    kineto_kernel_count(sys.argv[1], int(sys.argv[2]))
