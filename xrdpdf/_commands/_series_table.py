"""The series summary as a terminal table (shared by ``series`` and ``demo``)."""

from __future__ import annotations


def print_summary(rows) -> None:
    """Print the series summary as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    cols = [
        ("name", "{}"),
        ("cycle", "{}"),
        ("state", "{}"),
        ("phase", "{}"),
        ("a_A", "{:.5f}"),
        ("a_esd_A", "{:.5f}"),
        ("size_A", "{:.1f}"),
        ("rs_fraction", "{:.2f}"),
        ("rwp", "{:.3f}"),
        ("xi_A", "{:.1f}"),
        ("xi_esd_A", "{:.1f}"),
        ("r_noise_A", "{:.1f}"),
        ("volume_change_pct", "{:.2f}"),
        ("error", "{}"),
    ]
    table = Table(title="xrdpdf series summary")
    for c, _ in cols:
        table.add_column(c)
    for r in rows:
        cells = []
        for c, fmt in cols:
            v = r.get(c)
            if isinstance(v, float) and v != v:
                cells.append("")
            else:
                cells.append(fmt.format(v) if v not in (None, "") else "")
        table.add_row(*cells)
    Console(width=200).print(table)
