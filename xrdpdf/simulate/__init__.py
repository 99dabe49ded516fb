"""Truth generators for tests and the demo: detector images and powder patterns
(:mod:`.images`), Debye-equation clusters (:mod:`.debye`), the demo series (:mod:`.demo`).

The pipeline never imports these.
"""

__all__ = ["debye", "demo", "images"]
