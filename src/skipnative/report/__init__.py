"""The sweep report (figures need matplotlib): report.md and report.html, rendered
from one list of sections (document.py), built from the report's data alone."""

from skipnative.analysis.report_data import sweep_data
from skipnative.report.document import Document, Images, Section, Table, to_html, to_markdown
from skipnative.report.write import write_report

__all__ = [
    "Document",
    "Images",
    "Section",
    "Table",
    "sweep_data",
    "to_html",
    "to_markdown",
    "write_report",
]
