"""Workflows that compose the stages: :mod:`.reduce` (frames → I(Q) [→ G(r) → ξ], the one
reduction path), :mod:`.series` (many samples on Dask → summary), :mod:`.watch` (a folder
being filled).
"""

__all__ = ["reduce", "series", "watch"]
