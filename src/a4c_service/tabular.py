"""Rows as text, for every command that prints a listing: an aligned table or CSV.

One renderer for ``a4c-projector show`` and ``a4c entities list`` (JSON stays with each
command: its values are typed, not text). A table is a header, a rule, then the rows,
each column as wide as its widest cell.

CSV cells are safe to open in a spreadsheet. Spreadsheets (Excel, LibreOffice, Google
Sheets) treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab
or a carriage return) as a formula: an organization named ``=HYPERLINK(...)`` or an
address like ``=1+cmd@example.com`` would run when an operator opens an export. As
OWASP advises, such a cell is prefixed with a single quote, which the spreadsheet shows
as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Literal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TextFormat = Literal["table", "csv"]


def csv_cell(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render_text(columns: Sequence[str], rows: Sequence[Sequence[str]], fmt: TextFormat) -> str:
    """``rows`` (cells already text, in ``columns`` order) as an aligned table or CSV."""
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([csv_cell(cell) for cell in row] for row in rows)
        return out.getvalue().rstrip("\n")
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    lines = [
        "  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows),
    ]
    return "\n".join(line.rstrip() for line in lines)


__all__ = ["FORMULA_STARTS", "TextFormat", "csv_cell", "render_text"]
