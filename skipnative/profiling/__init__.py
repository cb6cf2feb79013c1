"""Profiling PyTorch workloads (needs torch at call time): profile(), the default
workloads and the launch benchmarks."""
