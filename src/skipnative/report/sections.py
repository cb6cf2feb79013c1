"""One builder per section of the sweep report, each from the report's data
(skipnative.analysis.report_data.sweep_data) to Section objects."""

from __future__ import annotations

import os
from typing import Any

from skipnative.report.document import Images, Section, Table
from skipnative.text import short_name
from skipnative.trace import loss_text


def whatif_label(key: str) -> str:
    if key == "graphs":
        return "CUDA graphs"
    s = float(key)
    if s == 1:
        return "replayed unchanged"
    return f"CPU {s:g}x slower" if s > 1 else f"CPU {1 / s:g}x faster"


def _share(part_us: float, of_us: float) -> str:
    """The share as "1.20 ms (12 % of IL)"; one that rounds to 0 but is not, "<1 %"."""
    if not of_us:
        return "-"
    pct = 100 * part_us / of_us
    return f"{part_us / 1e3:,.2f} ms ({'<1' if 0 < pct < 0.5 else f'{pct:.0f}'} % of IL)"


def _transition(batch: int | None) -> str:
    return "not reached in this range" if batch is None else str(batch)


def _knee(series: dict[str, Any]) -> str:
    """The TKLQT knee, or why there is none: it is a rise over the smallest batch
    size's TKLQT, which one batch size cannot show."""
    if len(series["values"]) < 2:
        return "not found (it needs two or more batch sizes)"
    return _transition(series["knee"])


def _ms(us: float) -> str:
    return f"{us / 1e3:,.2f}"


def title(data: dict[str, Any]) -> str:
    if data.get("script"):  # a workload of the user's: its phase and length are its own
        return f"TKLQT sweep: {os.path.basename(data['script'])}"
    return f"TKLQT sweep: {data['phase']}, sequence length {data['seq_len']}"


def summary(data: dict[str, Any], source_note: str = "") -> Section:
    """Under the title: card, source, the verdict, a failed point."""
    blocks: list[Any] = [f"Card: {data['card']}. Source: `{data['folder']}`."]
    if source_note:
        blocks.append(source_note)
    blocks.append(_verdict(data))
    for b, lost in zip(data["values"], data.get("losses") or []):
        if lost:
            blocks.append(
                f"**Batch {b}'s capture dropped {loss_text(lost)}**: its numbers miss that work."
            )
    if data["failed"]:
        f = data["failed"]
        blocks.append(
            f"The sweep stopped at batch {f.get('batch')}, which failed: {f.get('error')}"
        )
    return Section(None, blocks)


def _verdict(data: dict[str, Any]) -> str:
    n = data["native_series"]
    knee = f"the TKLQT knee (paper's method, tau 0.5) is {'at ' * (n['knee'] is not None)}"
    knee += f"**{_knee(n)}**"
    if data["graphs"]:
        return (
            "Each iteration is one CUDA graph launch: its kernels do not wait for "
            "launch calls, so the queue transition does not apply (nor the 'bound' "
            "column, which follows it: GPU idle time tells how busy the GPU was); " + knee + "."
        )
    if n["queue_transition"] is None:
        return (
            "The run does not turn GPU-bound in this range (fewer than half of the "
            "kernels queue at every batch size); " + knee + "."
        )
    return (
        f"The run turns GPU-bound (at least half of the kernels queue) at batch size "
        f"**{n['queue_transition']}**; {knee}"
        + ("." if n["agree"] or n["knee"] is None else ": the two methods disagree.")
    )


def per_iteration(data: dict[str, Any]) -> Section:
    """The per-point table: native (and Kineto) TKLQT, IL, AKD, queueing, bound,
    and each point's perturbation where measured."""
    kin, fids = data.get("kineto"), data["fidelity"]
    measured = bool(fids) and all(f and f.get("perturbation") is not None for f in fids)
    header = ["batch", "TKLQT ms", "IL ms", "AKD us", "queued", "bound"]
    if kin:
        header[2:2] = ["Kineto TKLQT ms", "Kineto/native"]
        header[5:5] = ["Kineto IL ms"]
    floor = measured and all(f.get("floor_perturbation") is not None for f in fids)
    kin_p = measured and all(f.get("kineto_perturbation") is not None for f in fids)
    if measured:
        header.append("perturbation")
    if floor:
        header.append("floor")
    if kin_p:
        header.append("Kineto perturbation")
    rows = []
    for i, b in enumerate(data["values"]):
        p = data["native"][i]
        row = [str(b), _ms(p["tklqt_us"]), _ms(p["il_us"]), f"{p['akd_us']:,.1f}"]
        row += [f"{p['queued_fraction']:.2f}", p["bound"]]
        if kin:
            k = kin[i]
            ratio = f"{k['tklqt_us'] / p['tklqt_us']:.2f}" if p["tklqt_us"] else "-"
            row[2:2] = [_ms(k["tklqt_us"]), ratio]
            row[5:5] = [_ms(k["il_us"])]
        if measured:
            row.append(f"{fids[i]['perturbation']:+.1%}")
        if floor:
            row.append(f"{fids[i]['floor_perturbation']:+.1%}")
        if kin_p:
            row.append(f"{fids[i]['kineto_perturbation']:+.1%}")
        rows.append(row)
    blocks: list[Any] = [Table(header, rows)]
    over = _tklqt_over_il(data)
    if over:
        blocks.append(over)
    if measured:
        blocks.append(
            "Perturbation: how much the timing pass slowed each point's workload "
            "(SPEC.md section 6: IL by CUDA events, "
            f"{min(f['reps'] for f in fids)} or more runs unprofiled and as many under "
            "a capture, medians)."
            + (
                " Floor: the same under kernel activity alone, what any CUPTI kernel timer pays."
                if floor
                else ""
            )
            + (" Kineto: the same under torch.profiler." if kin_p else "")
        )
    return Section("Native against Kineto (per iteration)" if kin else "Per iteration", blocks)


def _tklqt_over_il(data: dict[str, Any]) -> str:
    """Why TKLQT can exceed IL, said where it does."""
    over = [
        (b, p["tklqt_us"] / p["il_us"])
        for b, p in zip(data["values"], data["native"])
        if p["il_us"] > 0 and p["tklqt_us"] > p["il_us"]
    ]
    if not over:
        return ""
    b, ratio = max(over, key=lambda x: x[1])
    return (
        f"TKLQT exceeds IL at {len(over)} of {len(data['values'])} batch sizes "
        f"(at most {ratio:.1f}x, at batch {b}): it is a sum over kernels, not a span. "
        "Once kernels queue, the launch-to-start times of the kernels waiting together "
        "overlap and each counts in full, so TKLQT measures how long kernels waited in "
        "all, and grows past IL as the queue deepens."
    )


def gpu_idle(data: dict[str, Any]) -> Section | None:
    if not all("gpu_idle_host_us" in p for p in data["native"]):
        return None
    rows = [
        [
            str(b),
            _ms(p["il_us"]),
            _ms(p["gpu_idle_host_us"] + p["gpu_idle_launch_us"]),
            _share(p["gpu_idle_host_us"], p["il_us"]),
            _share(p["gpu_idle_launch_us"], p["il_us"]),
        ]
        for b, p in zip(data["values"], data["native"])
    ]
    header = ["batch", "IL ms", "GPU idle ms", "waiting for the host", "waiting for launch"]
    text = (
        "Per stream, the idle gap before each kernel splits at its launch call's begin: "
        "before it the GPU waited for the host to reach the launch (framework and host "
        "work: a faster CPU or fewer ops shorten it); after it, for the launch call, "
        "submission and scheduling (CUDA graphs remove it)."
    )
    streams = max(p.get("gpu_idle_streams", 1) for p in data["native"])
    if streams > 1:
        text += (
            f" With several streams (up to {streams:g} here) the idle times are summed over "
            "the streams, so they can exceed IL; `skip analyze` gives them per stream."
        )
    return Section("Where the GPU's idle time goes", [text, Table(header, rows)])


def kineto_transition(data: dict[str, Any]) -> Section | None:
    if not data.get("kineto"):
        return None
    k = data["kineto_series"]
    t = k["queue_transition"]
    trans = f"would be at {t}" if t is not None else "would not be reached in this range"
    if len(k["values"]) < 2:
        knee = "no knee (it needs two or more batch sizes)"
    else:
        knee = f"the knee at {k['knee']}" if k["knee"] is not None else "no knee in this range"
    return Section(
        None, [f"From the Kineto (torch.profiler) pass the transition {trans}, and {knee}."]
    )


def whatif(data: dict[str, Any]) -> Section | None:
    if not data["whatif"]:
        return None
    keys, n, w = list(data["whatif"]), data["native_series"], data["whatif"]
    changes = "; ".join(
        "each iteration's launches replaced by one graph launch"
        if k == "graphs"
        else f"host work and launch calls x{float(k):g}"
        for k in keys
    )
    rows = [
        [str(b), _ms(n["il_us"][i])] + [_ms(w[k]["il_us"][i]) for k in keys]
        for i, b in enumerate(data["values"])
    ]
    moved = "; ".join(
        f"{whatif_label(k)}: "
        + (
            "not applicable (one launch per iteration)"
            if k == "graphs"
            else _transition(w[k]["queue_transition"])
        )
        for k in keys
    )
    return Section(
        "What if",
        [
            f"Each point's schedule replayed (`skip whatif`), GPU work as measured: {changes}.",
            Table(["batch", "IL ms"] + [f"{whatif_label(k)}: IL ms" for k in keys], rows),
            f"Transition (queue): measured {_transition(n['queue_transition'])}; {moved}.",
            *_unknown_waits(data),
        ],
    )


def _unknown_waits(data: dict[str, Any]) -> list[str]:
    n, m = data.get("unknown_waits", (0, 0))
    if not n:
        return []
    return [
        f"{n} of {m} `cudaStreamWaitEvent` calls do not say which work they wait for "
        "(capture with `stream_waits=True` to record it): the replay cannot hold back "
        "the work after them, so where a change delays the awaited work it predicts "
        "too early."
    ]


def figures(names: list[str]) -> Section:
    return Section(
        "Figures",
        [
            "TKLQT's parts: the launch call itself; from the call's return to CUPTI's "
            "'submitted' timestamp (work held in the driver's queue); from submission "
            "to the kernel's start (the GPU's own queue). Kernels that started before "
            "their call returned are left out of the shares.",
            Images(names),
        ],
    )


def top_kernels(data: dict[str, Any], i: int, label: str) -> Section | None:
    tk = data["top_kernels"][i]
    if not tk:
        return None
    rows = [
        [short_name(t["name"], 90), f"{t['count']:g}", _ms(t["total_us"]), f"{t['mean_us']:,.1f}"]
        for t in tk
    ]
    return Section(
        f"Top kernels at batch {data['values'][i]} ({label}), per iteration",
        [Table(["kernel", "count", "ms", "mean us"], rows)],
    )


def top_ops(data: dict[str, Any], i: int) -> Section | None:
    ops = data["ops"][i]
    if not ops:
        return None
    rows = [
        [o["op"][:80], f"{o['kernels']:g}", _ms(o["kernel_us"]), _ms(o["lq_us"])] for o in ops[:10]
    ]
    return Section(
        f"Top-level ATen ops at batch {data['values'][i]}, per iteration",
        [Table(["op", "kernels", "kernel ms", "launch+queue ms"], rows)],
    )


def all_sections(data: dict[str, Any], figure_names: list[str], source_note: str = ""):
    """Every section, in the report's order (those without data left out)."""
    last = len(data["values"]) - 1
    found = [
        summary(data, source_note),
        per_iteration(data),
        gpu_idle(data),
        kineto_transition(data),
        whatif(data),
        figures(figure_names),
    ]
    for label, i in (("smallest", 0), ("largest", last)):
        found += [top_kernels(data, i, label), top_ops(data, i)]
    return [s for s in found if s is not None]
