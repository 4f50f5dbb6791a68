"""The one layout of every table a command prints: columns two spaces apart, each as wide as
its widest cell, numbers aligned right, no trailing spaces.

`slo budget`, `slo gate`, `slo load` and the demo print their tables through it, so they read
alike and a column never shifts with the length of one value.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["table"]


def table(rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> list[str]:
    """The lines of `rows` (the header first, if any); column indexes in `right` align right.

    Every row has the same number of cells. The last column is padded too, then each line
    is stripped, so a short last cell leaves no trailing spaces.
    """
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
