"""The tables of ``plan``, ``status`` and ``run --rehearse``: a rich table on a terminal, one line per cell elsewhere.

On a terminal the table fits its width (long cells fold, short columns never wrap). Piped into a
file, a pager or CI logs, each cell is one line of aligned columns (no wrapping, no box
characters), with the title and the header first, so ``grep`` finds a cell with its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A column: its header, and whether it may fold on a terminal (long text) or never wraps (numbers)."""

    header: str
    fold: bool = False
    justify: str = "left"


def print_table(console: Console, title: str, columns: list[Column], rows: list[list[str]],
                styles: list[str | None] | None = None, caption: str = "") -> None:
    """Print ``rows`` under ``columns``: a table on a terminal, aligned lines otherwise.

    ``styles``: a rich style per row (its state's colour), used on a terminal only; ``caption``:
    one line under the table (what a column's notation means).
    """
    if console.is_terminal:
        table = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left",
                      box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        for column in columns:
            table.add_column(column.header, overflow="fold" if column.fold else "ellipsis",
                             no_wrap=not column.fold, justify=column.justify)
        for index, row in enumerate(rows):
            table.add_row(*(Text(value) for value in row), style=styles[index] if styles else None)
        console.print(table)
        return
    widths = [max([len(column.header), *(len(row[i]) for row in rows)]) for i, column in enumerate(columns)]

    def line(values: list[str]) -> str:
        cells = [value.rjust(width) if column.justify == "right" else value.ljust(width)
                 for value, width, column in zip(values, widths, columns)]
        return "  ".join(cells).rstrip()

    console.print(title, markup=False, highlight=False, soft_wrap=True)
    console.print(line([column.header for column in columns]), markup=False, highlight=False, soft_wrap=True)
    for row in rows:
        console.print(line(row), markup=False, highlight=False, soft_wrap=True)
    if caption:
        console.print(caption, markup=False, highlight=False, soft_wrap=True)
