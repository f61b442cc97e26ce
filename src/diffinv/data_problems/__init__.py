"""Problems built from measured data files (``diffinv reconstruct --data``).

:func:`~.detect.detect_kind` recognises the file; :mod:`.eht`, :mod:`.ct` and :mod:`.mri`
build the problem with a domain user's defaults; :mod:`.run` samples and writes the
outputs.
"""

from .detect import KINDS, detect_kind, detect_kinds

__all__ = ["KINDS", "detect_kind", "detect_kinds"]
