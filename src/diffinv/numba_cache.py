"""Where numba may keep its on-disk cache of compiled kernels, or whether it may at all.

numba caches beside the source (``__pycache__``) or in ``NUMBA_CACHE_DIR``.  A read-only
install (system site-packages, a zip, a container image) without a writable home makes
``njit(cache=True)`` fail, at decoration ("cannot cache function ...: no locator available")
or at the first compilation.  :func:`njit_cached` tries, in order: the user's
``NUMBA_CACHE_DIR``, the source tree, ``$XDG_CACHE_HOME/diffinv/numba`` (default
``~/.cache/diffinv/numba``); when none is writable it compiles without caching (slower first
call, same results).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "njit_cached"]


def _writable(folder: Path) -> bool:
    """Create ``folder`` if needed and check a file can be written in it (even as root)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".diffinv-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


@functools.cache
def cache_dir(source_dir: str) -> str | None:
    """The cache folder for kernels defined in ``source_dir``: ``""`` for numba's default
    (beside the source), a path to set as ``numba.config.CACHE_DIR``, or ``None`` (no cache)."""
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        return user if _writable(Path(user)) else None
    if _writable(Path(source_dir) / "__pycache__"):
        return ""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    fallback = Path(base) / "diffinv" / "numba"
    return str(fallback) if _writable(fallback) else None


def njit_cached(fn: Callable[..., Any], source_file: str, **options: Any) -> Callable[..., Any]:
    """``numba.njit(cache=True, **options)(fn)`` where a cache can be written, else uncached."""
    import numba

    where = cache_dir(str(Path(source_file).parent))
    if where is None:
        return numba.njit(cache=False, **options)(fn)
    if where and not numba.config.CACHE_DIR:
        numba.config.CACHE_DIR = where
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **options)(fn)
