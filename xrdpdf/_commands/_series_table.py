"""The outcome of a series run on the terminal or as JSON (shared by ``series`` and ``demo``)."""

from __future__ import annotations

from typing import Any

from ._common import emit_json, info


def report_series(result, json_out: bool, **extra: Any) -> None:
    """List failed samples on stderr, then print the JSON summary or the table on stdout."""
    from ..series import SUMMARY_COLUMNS

    for row in result.rows:
        if row["error"]:
            info(f"xrdpdf: {row['name']}: {row['error']}")
    if json_out:
        emit_json(
            {
                **extra,
                "summary_csv": result.summary_csv,
                "summary_h5": result.summary_h5,
                "report": result.report,
                "skipped": result.skipped,
                "failed": result.failed,
                "samples": [{c: r.get(c) for c in SUMMARY_COLUMNS} for r in result.rows],
            }
        )
    else:
        print_summary(result.rows)
        info(f"wrote {result.summary_csv}, {result.summary_h5} and {result.report}")


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
