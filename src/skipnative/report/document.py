"""The report as data: sections of paragraphs, tables and images, rendered to
Markdown and to one self-contained HTML page from the same objects.

Paragraphs carry two inline marks, `code` and **bold**; table cells are plain
text (kernel names keep their `|`, `*` and `<>`).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from html import escape


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Images:
    """PNG files beside the report, by name."""

    names: list[str]


Block = str | Table | Images  # a str is a paragraph


@dataclass
class Section:
    title: str | None  # None: blocks that follow the previous section, no heading
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


@dataclass
class Document:
    title: str
    sections: list[Section]


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for s in doc.sections:
        if s.title is not None:
            lines += ["#" * s.level + " " + s.title, ""]
        for b in s.blocks:
            lines += [*_md_block(b), ""]
    return "\n".join(lines)


def _md_block(b: Block) -> list[str]:
    if isinstance(b, Table):
        out = [_md_row(b.header), "|" + "---|" * len(b.header)]
        return out + [_md_row(r) for r in b.rows]
    if isinstance(b, Images):
        return [f"![{n}]({n})" for n in b.names]
    return [b]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


_HTML_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45}table{border-collapse:collapse;margin:1rem 0}"
    "th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}code{background:#f3f3f3;padding:0 .2rem}"
)


# marks a page as skip report's own (write_report replaces or removes only such a one)
HTML_GENERATOR = '<meta name="generator" content="skipnative report">'


def to_html(doc: Document, base: str) -> str:
    """One page; the images (read from `base`) are embedded, so it travels alone."""
    body = [f"<h1>{_inline(doc.title)}</h1>"]
    for s in doc.sections:
        if s.title is not None:
            body.append(f"<h{s.level}>{_inline(s.title)}</h{s.level}>")
        body += [_html_block(b, base) for b in s.blocks]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{HTML_GENERATOR}'
        f"<title>{escape(doc.title)}</title><style>{_HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _html_block(b: Block, base: str) -> str:
    if isinstance(b, Table):
        head = "".join(f"<th>{escape(c, quote=False)}</th>" for c in b.header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(c, quote=False)}</td>" for c in r) + "</tr>"
            for r in b.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(b, Images):
        return "\n".join(_html_image(n, base) for n in b.names)
    return f"<p>{_inline(b)}</p>"


def _html_image(name: str, base: str) -> str:
    with open(os.path.join(base, name), "rb") as f:
        data_uri = base64.b64encode(f.read()).decode("ascii")
    return f'<p><img alt="{escape(name)}" src="data:image/png;base64,{data_uri}"></p>'


def _inline(text: str) -> str:
    """Escapes text and renders the inline marks: `code` and **bold**."""
    out = []
    for i, part in enumerate(text.split("`")):
        part = escape(part, quote=False)
        if i % 2:
            out.append(f"<code>{part}</code>")
        else:
            bold = part.split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bold)))
    return "".join(out)
