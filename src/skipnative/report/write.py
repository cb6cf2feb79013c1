"""The sweep report: report.md with PNG plots (and report.html), from a sweep folder.

Data first (skipnative.analysis.report_data), then figures and sections that
only consume it; Markdown and HTML render from the same sections.
"""

from __future__ import annotations

import contextlib
import os

from skipnative.analysis.report_data import WHATIF_CPU, sweep_data
from skipnative.io.atomic import atomic_output
from skipnative.report import sections
from skipnative.report.document import HTML_GENERATOR, Document, to_html, to_markdown
from skipnative.report.figures import FIGURE_NAMES, write_figures

# what write_report may write into its folder
REPORT_FILES = ("report.md", "report.html", *FIGURE_NAMES)


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
    data = sweep_data(folder, whatif_cpu, whatif_graphs)  # a folder that is no sweep: no output
    os.makedirs(out, exist_ok=True)
    figs = write_figures(data, out)
    doc = Document(sections.title(data), sections.all_sections(data, figs, source_note))
    path = os.path.join(out, "report.md")
    _write_whole(path, to_markdown(doc))
    page = os.path.join(out, "report.html")
    if html:
        path = page
        _write_whole(path, to_html(doc, out))
    else:  # an earlier run's page would no longer match report.md
        _remove_own_page(page)
    return path


def _remove_own_page(path: str) -> None:
    """Removes `path` where it is a page write_report wrote (its generator mark):
    a report.html of the user's own is left where it is."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return
    if HTML_GENERATOR.encode() in head:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _write_whole(path: str, text: str) -> None:
    """`text` as UTF-8 (what report.html declares; not the locale's encoding) in
    `path`, replacing an earlier report whole or not at all: written in place, a
    failure midway (text that does not encode) left an empty report.md."""
    with atomic_output(path, overwrite=True) as f:
        f.write(text.encode("utf-8"))
