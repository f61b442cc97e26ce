"""PNG figures of a posterior with colour bars and physical axes (uas for EHT, mm for CT/MRI)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..plotting import new_figure, save_png

__all__ = ["write_posterior_figures"]


def _extent(meta: dict, n_rows: int, n_cols: int) -> tuple[list[float], str, str]:
    """Image extent ``[left, right, bottom, top]`` and axis labels from the metadata."""
    if "fov_uas" in meta:
        h = meta["fov_uas"] / 2
        # east (RA increasing) to the left, as on the sky
        return [h, -h, -h, h], "relative RA (uas)", "relative Dec (uas)"
    dy, dx = meta.get("pixel_size_mm", (1.0, 1.0))
    unit = meta.get("axis_unit", "mm")
    return [0.0, n_cols * dx, n_rows * dy, 0.0], f"x ({unit})", f"y ({unit})"


def _figure(path: Path, images: list[torch.Tensor], titles: list[str], meta: dict,
            units: str, cmap: str, shared: bool) -> None:
    n = len(images)
    fig, axes = new_figure(n, (4.2, 3.8))
    lo = min(float(im.min()) for im in images) if shared else None
    hi = max(float(im.max()) for im in images) if shared else None
    for ax, im, title in zip(axes, images, titles):
        extent, xl, yl = _extent(meta, *im.shape[-2:])
        h = ax.imshow(im.numpy(), cmap=cmap, extent=extent, vmin=lo, vmax=hi, origin="upper")
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        fig.colorbar(h, ax=ax, fraction=0.046, pad=0.04, label=units)
    fig.tight_layout()
    save_png(fig, path, tight=False)


def write_posterior_figures(out: Path, images: dict[str, torch.Tensor], meta: dict) -> list[str]:
    """``mean.png``, ``std.png`` and ``samples.png`` from real ``(H, W)`` / ``(K, H, W)`` images.

    ``images`` has ``mean``, ``std`` and ``samples``; ``meta`` gives ``units`` and either
    ``fov_uas`` or ``pixel_size_mm`` (row, column).
    """
    units = meta.get("units", "")
    label = meta.get("label", "")
    _figure(out / "mean.png", [images["mean"]], [f"posterior mean {label}"], meta, units,
            "afmhot" if "fov_uas" in meta else "gray", False)
    _figure(out / "std.png", [images["std"]], ["posterior std (uncertainty)"], meta, units,
            "magma", False)
    k = min(4, images["samples"].shape[0])
    _figure(out / "samples.png", list(images["samples"][:k]), [f"sample {i}" for i in range(k)],
            meta, units, "afmhot" if "fov_uas" in meta else "gray", True)
    return ["mean.png", "std.png", "samples.png"]
