"""The bottom layer: errors, units, the `Pattern` container, atomic file writing, the version.

Numpy only; everything else in xrdpdf may import from here.
"""
