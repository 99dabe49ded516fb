"""Ex situ series: a TOML description of samples → per-sample pipeline on Dask → summary.

:mod:`.config` reads and checks the series file, :mod:`.run` processes the
samples (through :mod:`xrdpdf.workflows.reduce`, the one reduction path), :mod:`.summary`
derives the quantities the file declares and writes the table and figures.
"""

from xrdpdf.workflows.series._outdir import OWNER_FILE, check_outdir
from xrdpdf.workflows.series.config import (
    DERIVED_KINDS,
    DerivedSpec,
    SampleSpec,
    SeriesConfig,
    integration_format,
    integration_overrides,
    integration_settings,
    load_series,
    pdf_config,
    refine_options,
)
from xrdpdf.workflows.series.run import (
    SampleOutcome,
    SeriesResult,
    input_hash,
    integrate_sample,
    process_sample,
    reference_sample,
    run_series,
)
from xrdpdf.workflows.series.summary import (
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    derive,
    read_summary,
    summary_columns,
    write_figures,
    write_summary_csv,
    write_summary_h5,
)

__all__ = [
    "DERIVED_KINDS",
    "OWNER_FILE",
    "DerivedSpec",
    "RESULT_COLUMNS",
    "SUMMARY_COLUMNS",
    "SampleOutcome",
    "SampleSpec",
    "SeriesConfig",
    "SeriesResult",
    "check_outdir",
    "derive",
    "input_hash",
    "integrate_sample",
    "integration_format",
    "integration_overrides",
    "integration_settings",
    "load_series",
    "pdf_config",
    "process_sample",
    "read_summary",
    "reference_sample",
    "refine_options",
    "run_series",
    "summary_columns",
    "write_figures",
    "write_summary_csv",
    "write_summary_h5",
]
