"""Optional dependencies: import them with an error that names the extra to install.

The core package needs torch, numpy, scipy, h5py and tqdm.  Each field's heavier tools come
with an extra: ``diffinv[mri]`` (sigpy, finufft, torchkbnufft), ``diffinv[ct]`` (numba),
``diffinv[vlbi]`` (astropy, finufft), ``diffinv[plots]`` (matplotlib), ``diffinv[data]``
(scikit-image and the readers of other image formats) and ``diffinv[all]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "require"]

#: Which extra brings each optional top-level module.
EXTRAS: dict[str, str] = {
    "sigpy": "mri",
    "torchkbnufft": "mri",
    "finufft": "mri",
    "numba": "ct",
    "astropy": "vlbi",
    "matplotlib": "plots",
    "skimage": "data",
}


def require(module: str, extra: str | None = None, purpose: str = "") -> ModuleType:
    """Import ``module`` (dotted names allowed) or raise ``ImportError`` naming the extra.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``"astropy.io.fits"``.
    extra : str, optional
        The ``diffinv[...]`` extra that installs it; default looked up in :data:`EXTRAS`.
    purpose : str
        What needs it, for the message (e.g. ``"reading UVFITS files"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = extra or EXTRAS.get(top, "all")
        why = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"{top}: the optional package {top!r} is needed{why}; install it with "
            f"pip install 'diffinv[{extra}]'"
        ) from err
