"""The sweep report: report.md with PNG plots, from a sweep folder.

Data first (`sweep_data`), then figures and text that only consume it.
"""

from __future__ import annotations

import base64
import os
from html import escape
from typing import Any

import numpy as np

from skipnative.analysis.report_data import WHATIF_CPU, sweep_data


def whatif_label(key: str) -> str:
    if key == "graphs":
        return "CUDA graphs"
    s = float(key)
    if s == 1:
        return "replayed unchanged"
    return f"CPU {s:g}x slower" if s > 1 else f"CPU {1 / s:g}x faster"


def _figures(data: dict[str, Any], out: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = data["values"]
    n = data["native_series"]
    files: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        files.append(name)

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
    save(fig, "tklqt_il.png")

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
    save(fig, "tklqt_parts.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.boxplot([np.maximum(np.array(v), 1e-3) for v in data["lq_us"]], showfliers=False)
    ax.set_xticks(np.arange(1, len(xs) + 1), [str(x) for x in xs])
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("kernel start - launch begin (us)")
    ax.set_title("Per-kernel launch-and-queue time")
    save(fig, "lq_distribution.png")

    if data["whatif"]:
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
        save(fig, "whatif_il.png")
    return files


def _share(part_us: float, of_us: float) -> str:
    return f"{part_us / 1e3:,.2f} ms ({100 * part_us / of_us:.0f} % of IL)" if of_us else "-"


def _transition(batch: int | None) -> str:
    return "not reached in this range" if batch is None else str(batch)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def write_report(
    folder: str,
    out: str | None = None,
    *,
    source_note: str = "",
    whatif_cpu: tuple[float, ...] = WHATIF_CPU,
    whatif_graphs: bool = True,
    html: bool = False,
) -> str:
    """Writes report.md and its PNGs into `out` (default: the sweep folder), and
    with `html` a self-contained report.html; returns the path of the last."""
    out = out or folder
    os.makedirs(out, exist_ok=True)
    data = sweep_data(folder, whatif_cpu, whatif_graphs)
    figs = _figures(data, out)
    n, xs = data["native_series"], data["values"]
    lines = [
        f"# TKLQT sweep: {data['phase']}, sequence length {data['seq_len']}",
        "",
        f"Card: {data['card']}. Source: `{data['folder']}`.",
        "",
    ]
    if source_note:
        lines += [source_note, ""]
    knee = f"the TKLQT knee (paper's method, tau 0.5) is at **{_transition(n['knee'])}**"
    if data["graphs"]:
        verdict = (
            "Each iteration is one CUDA graph launch: its kernels do not wait for "
            "launch calls, so the queue transition does not apply (nor the 'bound' "
            "column, which follows it: GPU idle time tells how busy the GPU was); " + knee + "."
        )
    elif n["queue_transition"] is None:
        verdict = (
            "The run does not turn GPU-bound in this range (fewer than half of the "
            "kernels queue at every batch size); " + knee + "."
        )
    else:
        verdict = (
            f"The run turns GPU-bound (at least half of the kernels queue) at batch size "
            f"**{n['queue_transition']}**; {knee}"
            + ("." if n["agree"] or n["knee"] is None else ": the two methods disagree.")
        )
    lines += [verdict, ""]
    if data["failed"]:
        f = data["failed"]
        lines += [
            f"The sweep stopped at batch {f.get('batch')}, which failed: {f.get('error')}",
            "",
        ]
    kin = data.get("kineto")
    header = ["batch", "TKLQT ms", "IL ms", "AKD us", "queued", "bound"]
    if kin:
        header[2:2] = ["Kineto TKLQT ms", "Kineto/native"]
        header[5:5] = ["Kineto IL ms"]
    fids = data["fidelity"]
    measured = bool(fids) and all(f and f.get("perturbation") is not None for f in fids)
    if measured:
        header.append("perturbation")
    rows = []
    for i, b in enumerate(xs):
        p = data["native"][i]
        row = [
            str(b),
            f"{p['tklqt_us'] / 1e3:,.2f}",
            f"{p['il_us'] / 1e3:,.2f}",
            f"{p['akd_us']:,.1f}",
            f"{p['queued_fraction']:.2f}",
            p["bound"],
        ]
        if kin:
            k = kin[i]
            row[2:2] = [
                f"{k['tklqt_us'] / 1e3:,.2f}",
                f"{k['tklqt_us'] / p['tklqt_us']:.2f}" if p["tklqt_us"] else "-",
            ]
            row[5:5] = [f"{k['il_us'] / 1e3:,.2f}"]
        if measured:
            row.append(f"{fids[i]['perturbation']:+.1%}")
        rows.append(row)
    title = "Native against Kineto (per iteration)" if kin else "Per iteration"
    lines += [f"## {title}", "", _md_table(header, rows), ""]
    if measured:
        lines += [
            "Perturbation: how much the timing pass slowed each point's workload "
            "(SPEC.md section 6: IL by CUDA events, "
            f"{min(f['reps'] for f in fids)} or more runs unprofiled and as many under "
            "a capture, medians).",
            "",
        ]
    if all("gpu_idle_host_us" in p for p in data["native"]):
        lines += [
            "## Where the GPU's idle time goes",
            "",
            "Per stream, the idle gap before each kernel splits at its launch call's begin: "
            "before it the GPU waited for the host to reach the launch (framework and host "
            "work: a faster CPU or fewer ops shorten it); after it, for the launch call, "
            "submission and scheduling (CUDA graphs remove it).",
            "",
            _md_table(
                ["batch", "IL ms", "GPU idle ms", "waiting for the host", "waiting for launch"],
                [
                    [
                        str(b),
                        f"{p['il_us'] / 1e3:,.2f}",
                        f"{(p['gpu_idle_host_us'] + p['gpu_idle_launch_us']) / 1e3:,.2f}",
                        _share(p["gpu_idle_host_us"], p["il_us"]),
                        _share(p["gpu_idle_launch_us"], p["il_us"]),
                    ]
                    for b, p in zip(xs, data["native"])
                ],
            ),
            "",
        ]
    if data.get("kineto"):
        k = data["kineto_series"]
        lines += [
            f"From the Kineto (torch.profiler) pass the transition would be at "
            f"{k['queue_transition']} and the knee at {k['knee']}.",
            "",
        ]
    if data["whatif"]:
        keys = list(data["whatif"])
        lines += [
            "## What if",
            "",
            "Each point's schedule replayed (`skip whatif`), GPU work as measured: "
            + "; ".join(
                "each iteration's launches replaced by one graph launch"
                if k == "graphs"
                else f"host work and launch calls x{float(k):g}"
                for k in keys
            )
            + ".",
            "",
            _md_table(
                ["batch", "IL ms"] + [f"{whatif_label(k)}: IL ms" for k in keys],
                [
                    [str(b), f"{n['il_us'][i] / 1e3:,.2f}"]
                    + [f"{data['whatif'][k]['il_us'][i] / 1e3:,.2f}" for k in keys]
                    for i, b in enumerate(xs)
                ],
            ),
            "",
            "Transition (queue): measured "
            + _transition(n["queue_transition"])
            + "; "
            + "; ".join(
                f"{whatif_label(k)}: "
                + (
                    "not applicable (one launch per iteration)"
                    if k == "graphs"
                    else _transition(data["whatif"][k]["queue_transition"])
                )
                for k in keys
            )
            + ".",
            "",
        ]
    lines += [
        "## Figures",
        "",
        "TKLQT's parts: the launch call itself; from the call's return to CUPTI's "
        "'submitted' timestamp (work held in the driver's queue); from submission "
        "to the kernel's start (the GPU's own queue). Kernels that started before "
        "their call returned are left out of the shares.",
        "",
    ]
    lines += [f"![{f}]({f})" for f in figs] + [""]
    for label, i in (("smallest", 0), ("largest", len(xs) - 1)):
        tk = data["top_kernels"][i]
        if tk:
            lines += [
                f"## Top kernels at batch {xs[i]} ({label}), per iteration",
                "",
                _md_table(
                    ["kernel", "count", "ms", "mean us"],
                    [
                        [
                            t["name"][:90].replace("|", "\\|"),
                            f"{t['count']:g}",
                            f"{t['total_us'] / 1e3:,.2f}",
                            f"{t['mean_us']:,.1f}",
                        ]
                        for t in tk
                    ],
                ),
                "",
            ]
        ops = data["ops"][i]
        if ops:
            lines += [
                f"## Top-level ATen ops at batch {xs[i]}, per iteration",
                "",
                _md_table(
                    ["op", "kernels", "kernel ms", "launch+queue ms"],
                    [
                        [
                            o["op"][:80],
                            f"{o['kernels']:g}",
                            f"{o['kernel_us'] / 1e3:,.2f}",
                            f"{o['lq_us'] / 1e3:,.2f}",
                        ]
                        for o in ops[:10]
                    ],
                ),
                "",
            ]
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    if html:
        title = lines[0].lstrip("# ")
        path = os.path.join(out, "report.html")
        with open(path, "w") as f:
            f.write(markdown_to_html("\n".join(lines), out, title))
    return path


_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}code{background:#f3f3f3;padding:0 .2rem}"
)


def _inline(text: str) -> str:
    """Escapes text and renders the report's inline markup: `code` and **bold**."""
    out = []
    for i, part in enumerate(text.split("`")):
        part = escape(part, quote=False)
        if i % 2:
            out.append(f"<code>{part}</code>")
        else:
            bold = part.split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bold)))
    return "".join(out)


def _cells(row: str) -> list[str]:
    cells = row.strip().strip("|").replace("\\|", "\0").split("|")
    return [c.strip().replace("\0", "|") for c in cells]


def markdown_to_html(text: str, base: str, title: str) -> str:
    """The report's markdown (headings, paragraphs, tables, images) as one
    self-contained HTML page: images are embedded, so the file travels alone."""
    body: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            head, data = rows[0], [r for r in rows[1:] if not all(set(c) <= {"-"} for c in r)]
            body.append(
                "<table><thead><tr>"
                + "".join(f"<th>{_inline(c)}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join(
                    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in data
                )
                + "</tbody></table>"
            )
            continue
        elif line.startswith("![") and line.endswith(")"):
            alt, name = line[2:-1].split("](", 1)
            with open(os.path.join(base, name), "rb") as f:
                data_uri = base64.b64encode(f.read()).decode("ascii")
            body.append(f'<p><img alt="{escape(alt)}" src="data:image/png;base64,{data_uri}"></p>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
