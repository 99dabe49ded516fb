"""Running a series: each sample through reduce → refine + size → PDF → ξ, on Dask.

Each sample runs integrate → refine + size → PDF → correlation length (see
:func:`process_sample`); :func:`run_series` maps that over the samples with a
``distributed`` client, skips samples whose inputs and settings are unchanged
(content hash), and writes ``summary.csv`` / ``summary.h5`` and the figures
from the results it holds in memory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xrdpdf._core.errors import InputError
from xrdpdf._core.pattern import Pattern
from xrdpdf._core.results import Result
from xrdpdf.workflows.series._outdir import check_outdir, claim_outdir
from xrdpdf.workflows.series._sample import (
    SampleOutcome,
    _cached,
    _empty_row,
    input_hash,
    integrate_sample,
    process_sample,
    reference_sample,
)
from xrdpdf.workflows.series.config import (
    SampleSpec,
    SeriesConfig,
)
from xrdpdf.workflows.series.summary import (
    derive,
    summary_columns,
    write_figures,
    write_summary_csv,
    write_summary_h5,
)

__all__ = [
    "SampleOutcome",
    "input_hash",
    "integrate_sample",
    "process_sample",
    "reference_sample",
    "SeriesResult",
    "run_series",
]


@dataclass
class SeriesResult(Result):
    """Outcome of :func:`run_series`.

    Attributes
    ----------
    rows : list of dict
        One summary row per sample, in the order of the series file.
    skipped : list of str
        Samples whose inputs and settings were unchanged (results reused).
    failed : list of str
        Samples whose ``error`` is not empty.
    summary_csv, summary_h5 : Path
    columns : tuple of str
        The summary's columns (:func:`~.summary.summary_columns`).
    patterns, grs : dict
        I(Q) and G(r) of each sample that has one, by name.
    """

    rows: list[dict[str, Any]]
    skipped: list[str]
    failed: list[str]
    summary_csv: Path
    summary_h5: Path
    figures: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None
    columns: tuple[str, ...] = ()
    patterns: dict[str, Pattern] = field(default_factory=dict)
    grs: dict[str, Pattern] = field(default_factory=dict)

    @property
    def n_ok(self) -> int:
        """Samples that produced at least an integrated pattern."""
        return len(self.patterns)


def run_series(
    config: SeriesConfig,
    outdir: str | os.PathLike,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    force: bool = False,
    overwrite: bool = False,
) -> SeriesResult:
    """Process every sample of a series, in parallel with Dask, and write the summary.

    Before any work, ``outdir`` is checked (:func:`check_outdir`) and claimed
    for this series (``OUTDIR/series.json`` names the series file), and the
    Dask scheduler is connected to.

    Parameters
    ----------
    config : SeriesConfig
        From :func:`~.config.load_series`.
    outdir : path-like
        Output directory (created).
    workers : int, optional
        Worker processes of a ``distributed.LocalCluster`` (default: the number
        of CPU cores, at most the number of samples).  ``0`` runs in this
        process without Dask (for notebooks and debugging).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides
        ``workers``.
    on_progress : callable, optional
        Called as ``on_progress(done, total, sample_name)`` after each sample.
    force : bool
        Recompute samples even when their content hash is unchanged.
    overwrite : bool
        Take over an ``outdir`` that holds another series' results (its
        summary, report and same-named samples are replaced).

    Returns
    -------
    SeriesResult

    Raises
    ------
    InputError
        ``outdir`` cannot be used (:func:`check_outdir`), or the scheduler
        cannot be reached.
    """
    outdir = Path(outdir)
    check_outdir(config, outdir, overwrite=overwrite)
    digests = {s.name: input_hash(config, s) for s in config.samples}
    done: dict[str, SampleOutcome] = {}
    skipped: list[str] = []
    todo: list[SampleSpec] = []
    for s in config.samples:
        cached = None if force else _cached(config, outdir, s, digests[s.name])
        if cached is not None:
            done[s.name] = cached
            skipped.append(s.name)
        else:
            todo.append(s)
    total = len(config.samples)
    # the amorphous references are processed before the samples that use them
    refs = {r.name for s in config.samples if (r := reference_sample(config, s)) is not None}
    batches = [[t for t in todo if t.name in refs], [t for t in todo if t.name not in refs]]
    batches = [b for b in batches if b]
    with contextlib.ExitStack() as stack:
        client = None
        if batches and not (scheduler is None and workers == 0):
            n = max(len(b) for b in batches)
            client = stack.enter_context(_dask_client(scheduler, workers, n))
        claim_outdir(config, outdir)
        if on_progress:
            for name in skipped:
                on_progress(len(skipped), total, name)
        if client is None:

            def in_process() -> Iterator[tuple[str, SampleOutcome]]:
                for batch in batches:
                    for t in batch:
                        ref = _reference_of(config, t, done)
                        yield t.name, process_sample(config, t, outdir, digests[t.name], ref)

            outcomes: Iterator = in_process()
        else:
            outcomes = _run_dask(client, config, batches, done, outdir, digests)
        for name, outcome in outcomes:
            done[name] = outcome
            if on_progress:
                on_progress(len(done), total, name)
    return _finish(config, outdir, [done[s.name] for s in config.samples], skipped)


@contextlib.contextmanager
def _dask_client(scheduler: str | None, workers: int | None, n_tasks: int) -> Iterator[Any]:
    """A ``distributed`` client: of ``scheduler``, or of a new LocalCluster (closed after)."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="20s")
        else:
            n = max(1, min(workers or os.cpu_count() or 1, n_tasks))
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            client = Client(cluster)
    except (OSError, ValueError, TypeError) as exc:  # bad address, nothing listening, timeout
        if cluster is not None:
            cluster.close()
        what = f"Dask scheduler {scheduler!r}" if scheduler else "a local Dask cluster"
        raise InputError(f"cannot connect to {what} ({' '.join(str(exc).split())})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _reference_of(config: SeriesConfig, sample: SampleSpec, done: dict) -> Pattern | None:
    ref = reference_sample(config, sample)
    return None if ref is None or ref.name not in done else done[ref.name].iq


def _finish(config: SeriesConfig, outdir: Path, outcomes: Sequence[SampleOutcome], skipped):
    columns = summary_columns(config)
    rows = [o.row for o in outcomes]
    for spec in config.derived:
        derive(rows, spec)
    csv_path = write_summary_csv(rows, outdir / "summary.csv", columns)
    h5_path = write_summary_h5(rows, outdir / "summary.h5", columns)
    failed = [r["name"] for r in rows if r["error"]]
    patterns = {o.row["name"]: o.iq for o in outcomes if o.iq is not None}
    grs = {o.row["name"]: o.gr for o in outcomes if o.gr is not None}
    figures, report = write_figures(config, rows, outdir, patterns, grs, columns)
    return SeriesResult(
        rows, skipped, failed, csv_path, h5_path, figures, report, columns, patterns, grs
    )


def _run_dask(client, config, batches, done, outdir, digests):
    """Yield ``(name, outcome)`` as samples finish; each batch waits for the one before.

    ``done`` (filled by the caller from what is yielded) gives the later batches
    the references' patterns.  A sample whose task fails (a worker died, a bug)
    gets an error row and no pattern: it counts as failed.
    """
    from distributed import as_completed

    for batch in batches:
        futures = {
            client.submit(
                process_sample,
                config,
                t,
                str(outdir),
                digests[t.name],
                _reference_of(config, t, done),
                pure=False,
                key=f"xrdpdf-{t.name}-{digests[t.name][:12]}",
            ): t
            for t in batch
        }
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # a worker died or a bug: report, keep going
                row = _empty_row(config, spec, digests[spec.name])
                row["error"] = f"worker: {type(exc).__name__}: {' '.join(str(exc).split())}"
                outcome = SampleOutcome(row)
            yield spec.name, outcome
