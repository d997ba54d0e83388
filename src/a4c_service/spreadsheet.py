"""CSV cells that are safe to open in a spreadsheet, for every tool that prints CSV.

Spreadsheets (Excel, LibreOffice, Google Sheets) treat a cell that starts with ``=``,
``+``, ``-`` or ``@`` (and, in some, a tab or a carriage return) as a formula: an
organization named ``=HYPERLINK(...)`` or an address like ``=1+cmd@example.com`` would
run when an operator opens an export. As OWASP advises, such a cell is prefixed with a
single quote, which the spreadsheet shows as text. JSON output is data and stays as is.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


__all__ = ["FORMULA_STARTS", "csv_cell"]
