"""Analysis of a Trace with numpy only: kernel joins and selection, metrics,
sweeps, fusion candidates, what-if replay, op attribution and pass alignment.

Nothing here imports torch, matplotlib or the compiled module
(tests/unit/test_layering.py)."""
