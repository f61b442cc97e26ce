"""Summaries and figures of a reconstruction (used by ``diffinv reconstruct``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from .demos.registry import Demo, plane_images
from .io import atomic_write, jsonable
from .plotting import new_figure, save_png
from .posterior import Posterior

__all__ = ["reconstruction_summary", "write_figures", "write_json", "psnr"]


def psnr(estimate: torch.Tensor, target: torch.Tensor, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB with the target's data range (max - min) by default."""
    estimate = estimate.detach().to(torch.float64)
    target = target.detach().to(torch.float64)
    if data_range is None:
        data_range = float(target.max() - target.min())
    mse = float(((estimate - target) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def reconstruction_summary(posterior: Posterior, demo: Demo) -> dict[str, Any]:
    """Key figures: fit to the data, and, when the truth is known, error and coverage."""
    d = posterior.diagnostics
    summary: dict[str, Any] = {
        "problem": posterior.metadata.get("problem"),
        "solver": d.get("solver"),
        "n_samples": posterior.n_samples,
        "nfe": d.get("nfe"),
        "wall_seconds": d.get("wall_seconds"),
        "reduced_chi2_mean": d.get("reduced_chi2_mean"),
        "reduced_chi2_median": d.get("reduced_chi2_median"),
        "effective_sample_size": posterior.ess,
        "description": demo.description,
        "warnings": list(d.get("warnings", [])),
    }
    if demo.x_true is not None:
        truth = demo.x_true.detach().cpu()[0]
        summary["psnr_mean"] = psnr(posterior.mean, truth)
        summary["rmse_mean"] = float(((posterior.mean - truth) ** 2).mean().sqrt())
        if not posterior.samples.is_complex() and posterior.n_samples >= 4:
            summary["coverage_90"] = posterior.coverage(truth, 0.9)
    return jsonable(summary)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` as indented JSON, atomically."""

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")

    atomic_write(path, write, suffix=".json.tmp")


def _save_image(
    path: Path,
    image: torch.Tensor,
    title: str,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
) -> None:
    fig, (ax,) = new_figure(1, (4.0, 4.0))
    im = ax.imshow(image.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, origin="upper")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    save_png(fig, path)


def _save_grid(path: Path, images: torch.Tensor, title: str, vmin: float, vmax: float) -> None:
    n = images.shape[0]
    fig, axes = new_figure(n, (2.2, 2.4))
    for i in range(n):
        axes[i].imshow(images[i].numpy(), cmap="gray", vmin=vmin, vmax=vmax)
        axes[i].set_xticks([])
        axes[i].set_yticks([])
    fig.suptitle(title)
    save_png(fig, path)


def write_figures(out: Path, posterior: Posterior, demo: Demo, n_show: int = 4) -> list[str]:
    """Write mean, std, a few samples and (when known) truth and error PNGs; return names."""
    to_image = demo.to_image or plane_images
    units = demo.metadata.get("units", "")
    mean = to_image(posterior.mean[None].to(torch.float64))[0]
    samples = to_image(posterior.samples[:n_show].to(torch.float64))
    std = posterior.std[None].to(torch.float64)
    std_img = to_image(std)[0] if not posterior.samples.is_complex() else std.reshape(mean.shape)
    ref = mean
    if demo.x_true is not None:
        truth = to_image(demo.x_true.detach().cpu().to(torch.float64))[0]
        ref = truth
    lo, hi = float(ref.min()), float(ref.max())
    files = []
    _save_image(out / "mean.png", mean, f"posterior mean [{units}]", vmin=lo, vmax=hi)
    files.append("mean.png")
    _save_image(out / "std.png", std_img.abs(), f"posterior std [{units}]", cmap="magma")
    files.append("std.png")
    _save_grid(out / "samples.png", samples, "posterior samples", lo, hi)
    files.append("samples.png")
    if demo.x_true is not None:
        _save_image(out / "truth.png", truth, f"ground truth [{units}]", vmin=lo, vmax=hi)
        _save_image(
            out / "error.png", (mean - truth).abs(), f"|mean - truth| [{units}]", cmap="magma"
        )
        files += ["truth.png", "error.png"]
    return files
