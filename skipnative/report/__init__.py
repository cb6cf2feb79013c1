"""The sweep report (figures need matplotlib): report.md and report.html."""

from skipnative.report.write import markdown_to_html, sweep_data, write_report

__all__ = ["markdown_to_html", "sweep_data", "write_report"]
