"""The report's figures (matplotlib, Agg): each plot from the report's data."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from skipnative.report.sections import whatif_label


def write_figures(data: dict[str, Any], out: str) -> list[str]:
    """Writes the PNGs into `out`; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = [(n, PLOTS[n]) for n in FIGURE_NAMES if n != "whatif_il.png" or data["whatif"]]
    files = []
    for name, plot in plots:
        fig = plot(plt, data)
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        files.append(name)
    return files


def _tklqt_il(plt, data: dict[str, Any]):
    """TKLQT and IL against batch size, native (and Kineto)."""
    xs = data["values"]
    n = data["native_series"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(xs, np.array(n["tklqt_us"]) / 1e3, "o-", label="TKLQT (skipnative)")
    ax.plot(xs, np.array(n["il_us"]) / 1e3, "s-", label="IL (skipnative)")
    if data.get("kineto"):
        k = data["kineto_series"]
        ax.plot(xs, np.array(k["tklqt_us"]) / 1e3, "o--", alpha=0.6, label="TKLQT (Kineto)")
        ax.plot(xs, np.array(k["il_us"]) / 1e3, "s--", alpha=0.6, label="IL (Kineto)")
    if n["queue_transition"] is not None:
        ax.axvline(n["queue_transition"], color="k", ls=":", label="queue transition")
    if n["knee"] is not None:
        ax.axvline(n["knee"], color="r", ls="--", alpha=0.5, label="TKLQT knee")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms")
    ax.set_title(f"TKLQT and inference latency, {data['phase']} ({data['card']})")
    ax.legend(fontsize=8)
    return fig


def _tklqt_parts(plt, data: dict[str, Any]):
    """TKLQT's parts as shares, per point."""
    xs = data["values"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    total = np.array([max(p["tklqt_us"], 1e-9) for p in data["native"]])
    api = np.array([p["launch_api_us"] for p in data["native"]])
    sub = np.array([p.get("launch_submit_us", 0.0) for p in data["native"]])
    queue = np.array([p.get("launch_queue_us", 0.0) for p in data["native"]])
    early = np.array([p.get("launch_early_us", 0.0) for p in data["native"]])
    # wait not split (kernels without latency timestamps)
    rest = np.maximum(total - early - api - sub - queue, 0)
    total = api + sub + queue + rest  # shares of the positive parts (early starts are < 0)
    pos = np.arange(len(xs))
    bottom = np.zeros(len(xs))
    for part, label in (
        (api, "launch call"),
        (sub, "call return -> submitted"),
        (queue, "submitted -> kernel start"),
        (rest, "wait (not split)"),
    ):
        share = 100 * part / np.maximum(total, 1e-9)
        if share.any():
            ax.bar(pos, share, bottom=bottom, label=label)
            bottom += share
    ax.set_xticks(pos, [str(x) for x in xs])
    ax.set_ylim(0, 100)
    ax.set_xlabel("batch size")
    ax.set_ylabel("% of TKLQT")
    ax.set_title(
        "Where TKLQT goes (kernels that started before their call returned: left out)", fontsize=9
    )
    ax.legend(fontsize=8)
    return fig


def _lq_distribution(plt, data: dict[str, Any]):
    """Per-kernel launch-and-queue time, per point."""
    xs = data["values"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.boxplot([np.maximum(np.array(v), 1e-3) for v in data["lq_us"]], showfliers=False)
    ax.set_xticks(np.arange(1, len(xs) + 1), [str(x) for x in xs])
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("kernel start - launch begin (us)")
    ax.set_title("Per-kernel launch-and-queue time")
    return fig


def _whatif_il(plt, data: dict[str, Any]):
    """IL measured and predicted by each what-if replay."""
    xs = data["values"]
    n = data["native_series"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(xs, np.array(n["il_us"]) / 1e3, "s-", color="k", label="IL measured")
    if n["queue_transition"] is not None:
        ax.axvline(n["queue_transition"], color="k", ls=":")
    for i, (key, w) in enumerate(data["whatif"].items()):
        color = f"C{i}"
        ax.plot(
            xs, np.array(w["il_us"]) / 1e3, "o--", color=color,
            label=f"IL predicted, {whatif_label(key)}",
        )  # fmt: skip
        if w["queue_transition"] is not None and key != "graphs":
            ax.axvline(w["queue_transition"], color=color, ls=":", alpha=0.7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("IL (ms)")
    ax.set_title("What if: replayed schedules (dotted: queue transitions)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


PLOTS = {
    "tklqt_il.png": _tklqt_il,
    "tklqt_parts.png": _tklqt_parts,
    "lq_distribution.png": _lq_distribution,
    "whatif_il.png": _whatif_il,
}
FIGURE_NAMES = tuple(PLOTS)  # every file the report may write beside report.md
