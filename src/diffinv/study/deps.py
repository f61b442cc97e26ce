"""Optional dependencies of ``diffinv study`` (the ``study`` extra)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require", "INSTALL_HINT"]

INSTALL_HINT = "pip install diffinv[study]"


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` saying to install the ``study`` extra.

    Parameters
    ----------
    module : str
        ``"distributed"``, ``"dask"`` or ``"yaml"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"diffinv study needs the optional package {module!r} ({err}); install it with "
            f"`{INSTALL_HINT}`"
        ) from None
