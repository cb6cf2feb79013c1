"""The real traces of tests/data/kineto (origin and license in tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"

# recorded with CUDA by torch 1.13 and newer
CUDA = [
    DATA / "a100_alexnet_train.json.gz",
    DATA / "a100_trace_diff_control.json.gz",
    DATA / "sampled_rank0.json.gz",
    DATA / "v100_ns_resolution_rank0.json.gz",
]
ROCM = DATA / "mi250_rocm_minitoy_train.json.gz"  # HIP call names, string-valued args
OLD_FORMAT = DATA / "old_format_inference_rank1.json.gz"  # torch 1.8-era categories
