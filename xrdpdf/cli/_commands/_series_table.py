"""The outcome of a series run on the terminal or as JSON (shared by ``series`` and ``demo``)."""

from __future__ import annotations

from typing import Any

from xrdpdf.cli._commands._common import emit_json, info


def report_series(result, json_out: bool, **extra: Any) -> None:
    """List failed samples on stderr, then print the JSON summary or the table on stdout."""
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
                "columns": list(result.columns),
                "samples": [{c: r.get(c) for c in result.columns} for r in result.rows],
            }
        )
    else:
        print_summary(result.rows, result.columns)
        info(f"wrote {result.summary_csv}, {result.summary_h5} and {result.report}")


_FORMATS = {
    "a_A": "{:.5f}",
    "a_esd_A": "{:.5f}",
    "size_A": "{:.1f}",
    "rs_fraction": "{:.2f}",
    "rs_fraction_esd": "{:.2f}",
    "rwp": "{:.3f}",
    "xi_A": "{:.1f}",
    "xi_esd_A": "{:.1f}",
    "r_noise_A": "{:.1f}",
}
_HIDDEN = ("size_esd_A", "qmax_invA", "n_images", "input_hash")


def print_summary(rows, columns) -> None:
    """Print the series summary as a rich table on stdout (every column but bookkeeping)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    cols = [(c, _FORMATS.get(c, "{:.4g}")) for c in columns if c not in _HIDDEN]
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
                text = v if isinstance(v, str) or not isinstance(v, float) else fmt.format(v)
                cells.append(str(text) if v not in (None, "") else "")
        table.add_row(*(escape(c) for c in cells))  # "[series]" in a message is text
    Console(width=200).print(table)
