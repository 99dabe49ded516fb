"""Type stub of the lazily re-exported public API (generated from ``_LAZY``; tests/test_api.py
checks that the two agree)."""

from xrdpdf import io as io
from xrdpdf import notebook as notebook
from xrdpdf import physics as physics
from xrdpdf import plot as plot
from xrdpdf import simulate as simulate
from xrdpdf import stages as stages
from xrdpdf import workflows as workflows
from xrdpdf._core import units as units
from xrdpdf._core._version import __version__ as __version__
from xrdpdf._core.errors import (
    CalibrationError as CalibrationError,
)
from xrdpdf._core.errors import (
    ConvergenceError as ConvergenceError,
)
from xrdpdf._core.errors import (
    InputError as InputError,
)
from xrdpdf._core.errors import (
    InputWarning as InputWarning,
)
from xrdpdf._core.errors import (
    NotDeterminedError as NotDeterminedError,
)
from xrdpdf._core.errors import (
    XrdpdfError as XrdpdfError,
)
from xrdpdf._core.errors import (
    XrdpdfWarning as XrdpdfWarning,
)
from xrdpdf._core.pattern import Pattern as Pattern
from xrdpdf.io import (
    read_pattern as read_pattern,
)
from xrdpdf.io import (
    write_pattern as write_pattern,
)
from xrdpdf.io.images import (
    iter_frames as iter_frames,
)
from xrdpdf.io.images import (
    read_dark as read_dark,
)
from xrdpdf.io.images import (
    read_flat as read_flat,
)
from xrdpdf.io.images import (
    read_image as read_image,
)
from xrdpdf.io.images import (
    read_mask as read_mask,
)
from xrdpdf.io.images import (
    write_image as write_image,
)
from xrdpdf.notebook import (
    PdfFitSession as PdfFitSession,
)
from xrdpdf.notebook import (
    PdfSession as PdfSession,
)
from xrdpdf.notebook import (
    RefinementSession as RefinementSession,
)
from xrdpdf.notebook import (
    SeriesExplorer as SeriesExplorer,
)
from xrdpdf.physics import (
    Phase as Phase,
)
from xrdpdf.physics import (
    Resolution as Resolution,
)
from xrdpdf.physics import (
    get_phase as get_phase,
)
from xrdpdf.physics import (
    load_resolution as load_resolution,
)
from xrdpdf.physics import (
    powder_pattern as powder_pattern,
)
from xrdpdf.simulate.debye import (
    debye_iq as debye_iq,
)
from xrdpdf.simulate.debye import (
    sphere_cluster as sphere_cluster,
)
from xrdpdf.simulate.images import (
    Beamstop as Beamstop,
)
from xrdpdf.simulate.images import (
    simulate_image as simulate_image,
)
from xrdpdf.simulate.images import (
    simulate_pattern as simulate_pattern,
)
from xrdpdf.stages import calibrate as calibrate
from xrdpdf.stages import corrlen as corrlen
from xrdpdf.stages import integrate as integrate
from xrdpdf.stages import pdf as pdf
from xrdpdf.stages import pdffit as pdffit
from xrdpdf.stages import refinement as refinement
from xrdpdf.stages import size as size
from xrdpdf.stages.calibrate import (
    CalibrationResult as CalibrationResult,
)
from xrdpdf.stages.calibrate import (
    auto_mask as auto_mask,
)
from xrdpdf.stages.calibrate import (
    instrument_resolution as instrument_resolution,
)
from xrdpdf.stages.corrlen import (
    CorrLenResult as CorrLenResult,
)
from xrdpdf.stages.corrlen import (
    correlation_length as correlation_length,
)
from xrdpdf.stages.integrate import (
    IntegrationSettings as IntegrationSettings,
)
from xrdpdf.stages.integrate import (
    Integrator as Integrator,
)
from xrdpdf.stages.integrate import (
    integrate_frames as integrate_frames,
)
from xrdpdf.stages.integrate import (
    integrate_image as integrate_image,
)
from xrdpdf.stages.integrate import (
    integrator_from_files as integrator_from_files,
)
from xrdpdf.stages.integrate import (
    load_poni as load_poni,
)
from xrdpdf.stages.pdf import (
    PdfConfig as PdfConfig,
)
from xrdpdf.stages.pdf import (
    PdfResult as PdfResult,
)
from xrdpdf.stages.pdf import (
    parse_composition as parse_composition,
)
from xrdpdf.stages.pdf import (
    transform as transform,
)
from xrdpdf.stages.refinement import (
    RefinementResult as RefinementResult,
)
from xrdpdf.stages.refinement import (
    RefinementWarning as RefinementWarning,
)
from xrdpdf.stages.size import (
    SizeResult as SizeResult,
)
from xrdpdf.stages.size import (
    scherrer as scherrer,
)
from xrdpdf.workflows import reduce as reduce
from xrdpdf.workflows import series as series
from xrdpdf.workflows import watch as watch
from xrdpdf.workflows.series import (
    load_series as load_series,
)
from xrdpdf.workflows.series import (
    read_summary as read_summary,
)
from xrdpdf.workflows.series import (
    run_series as run_series,
)
from xrdpdf.workflows.watch import (
    Watcher as Watcher,
)

__all__: list[str]
