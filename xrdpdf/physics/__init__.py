"""Pure physics shared by every stage: crystal structures, X-ray scattering, peak profiles,
the instrument resolution and the one powder forward model.

No I/O, no state; imports only :mod:`xrdpdf._core`.
"""

from xrdpdf.physics.cif import (
    builtin_phases,
    get_phase,
    phase_from_cif,
)
from xrdpdf.physics.crystal import (
    Phase,
    Reflections,
    Site,
    q_from_cell,
    reflection_intensities,
    structure_factors,
)
from xrdpdf.physics.crystallite import (
    combined_fwhm_eta,
    diameter_from_fwhm,
    scherrer_length,
    sphere_profile,
    sphere_widths,
)
from xrdpdf.physics.powder import (
    powder_pattern,
)
from xrdpdf.physics.profiles import (
    lp_bragg_brentano,
    pseudo_voigt,
    pv_sum,
    tch_fwhm_eta,
    tch_split,
)
from xrdpdf.physics.resolution import (
    Resolution,
    load_resolution,
    peak_widths,
    scherrer_size_definition,
)
from xrdpdf.physics.scattering import (
    ANODES,
    CU_KA1_A,
    CU_KA2_A,
    CU_KA2_RATIO,
    CU_KB_A,
    anode_lines,
    form_factor,
)

__all__ = [
    "CU_KA1_A",
    "CU_KA2_A",
    "CU_KB_A",
    "CU_KA2_RATIO",
    "ANODES",
    "anode_lines",
    "form_factor",
    "Site",
    "Reflections",
    "Phase",
    "q_from_cell",
    "reflection_intensities",
    "structure_factors",
    "builtin_phases",
    "phase_from_cif",
    "get_phase",
    "pseudo_voigt",
    "pv_sum",
    "tch_fwhm_eta",
    "tch_split",
    "lp_bragg_brentano",
    "Resolution",
    "load_resolution",
    "peak_widths",
    "scherrer_size_definition",
    "powder_pattern",
    "sphere_profile",
    "sphere_widths",
    "diameter_from_fwhm",
    "scherrer_length",
    "combined_fwhm_eta",
]
