"""Figures written to files without touching the caller's matplotlib backend.

Every PNG the package writes (CLI figures, ``reconstruct --data`` figures, study reports) is
drawn on a :class:`matplotlib.figure.Figure` created outside pyplot and saved atomically, so
writing a report from a notebook or a GUI session never switches its backend (switching to
Agg stopped a notebook's inline figures) and no figure is left registered with pyplot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .extras import require
from .io import atomic_write

__all__ = ["new_figure", "save_png"]


def new_figure(n_panels: int = 1, panel_size: tuple[float, float] = (4.0, 4.0),
               dpi: int = 100, purpose: str = "figures") -> tuple[Any, Any]:
    """A figure of ``n_panels`` side by side; returns ``(figure, axes)`` with ``axes`` the
    ``(n_panels,)`` array of axes.  Needs matplotlib (``diffinv[plots]``)."""
    require("matplotlib", purpose=purpose)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel_size[0] * n_panels, panel_size[1]), dpi=dpi)
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


def save_png(fig: Any, path: str | Path, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (``bbox_inches="tight"`` if ``tight``)."""
    extra = {"bbox_inches": "tight"} if tight else {}
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", **extra),
                        suffix=".png.tmp")
