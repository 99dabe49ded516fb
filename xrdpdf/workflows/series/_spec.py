"""The parsed series file: its samples, derived quantities and settings, as frozen dataclasses.

:func:`~xrdpdf.workflows.series.config.load_series` builds them;
:mod:`._options` turns them into each stage's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DerivedSpec", "SampleSpec", "SeriesConfig"]


@dataclass(frozen=True)
class SampleSpec:
    """One sample of a series: its images, labels, group and resolved settings.

    Attributes
    ----------
    name : str
        Used for output file names; letters, digits, ``._+-`` only.
    images : tuple of Path
        Image files (globs already expanded, sorted); every frame is summed.
    dark : Path or None
        Dark image, given to the integrator (pyFAI subtracts it per frame).
    composition : str or None
        Chemical composition for the PDF (sample > group > ``[series]``).
    phases : tuple of str
        Phases to refine (sample > group > ``[refine] phases``).
    labels : mapping
        The sample's values of the ``[labels]`` of the file (summary columns).
    group : str
        Its group ("" when none); derived quantities pair samples of one group.
    pdf : mapping
        ``[pdf]`` settings with the group's and the sample's overrides.
    use_reference : bool or str
        ``False``: no amorphous reference; a sample name: that one; ``True``:
        ``[refine] amorphous_reference``.
    """

    name: str
    images: tuple[Path, ...]
    dark: Path | None
    composition: str | None
    phases: tuple[str, ...]
    labels: Mapping[str, Any] = field(default_factory=dict)
    group: str = ""
    pdf: Mapping[str, Any] = field(default_factory=dict)
    use_reference: bool | str = True
    pdffit_model: Path | None = None

    def __getattr__(self, key: str) -> Any:
        # labels read as attributes (``sample.cycle``) for scripts and notebooks
        labels = object.__getattribute__(self, "labels")
        if key in labels:
            return labels[key]
        raise AttributeError(key)


@dataclass(frozen=True)
class DerivedSpec:
    """A ``[[derived]]`` quantity: ``kind`` of ``column`` between two samples of one group.

    The two samples are those of the group whose ``label`` equals ``from``
    and ``to``; both rows get the value (column ``name``) and its esd
    (column ``esd_name``).
    """

    name: str
    kind: str
    column: str
    label: str
    from_value: Any
    to_value: Any
    esd_name: str


@dataclass(frozen=True)
class SeriesConfig:
    """A parsed, validated series file.  Paths are absolute."""

    path: Path
    poni: Path
    mask: Path | None
    flat: Path | None
    resolution: Path | None
    composition: str | None
    title: str
    integrate: Mapping[str, Any] = field(default_factory=dict)
    pdf: Mapping[str, Any] = field(default_factory=dict)
    refine: Mapping[str, Any] = field(default_factory=dict)
    size: Mapping[str, Any] = field(default_factory=dict)
    samples: tuple[SampleSpec, ...] = ()
    labels: Mapping[str, Any] = field(default_factory=dict)
    derived: tuple[DerivedSpec, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)
    pdffit: Mapping[str, Any] = field(default_factory=dict)

    def settings_for(self, sample: SampleSpec) -> dict[str, Any]:
        """All settings that determine a sample's result (for the content hash)."""
        return {
            "integrate": dict(self.integrate),
            "pdf": {k: (str(v) if isinstance(v, Path) else v) for k, v in sample.pdf.items()},
            "refine": dict(self.refine),
            "size": dict(self.size),
            "composition": sample.composition,
            "phases": list(sample.phases),
            "labels": dict(sample.labels),
            "group": sample.group,
            "reference": sample.use_reference,
            "pdffit": dict(self.pdffit),
            "pdffit_model": None if sample.pdffit_model is None else str(sample.pdffit_model),
        }
