"""Profiling PyTorch workloads (needs torch at call time): profile(), the default
workloads and the launch benchmarks."""

from skipnative.analysis.attribution import Profile, attribute
from skipnative.profiling.passes import cuda_event_ms, measure_fidelity, profile

__all__ = ["Profile", "attribute", "cuda_event_ms", "measure_fidelity", "profile"]
