"""Data Exchange CT scans -> a transmission-Poisson problem over the full detector width.

Defaults a tomography user would choose, all recorded in the output:

* flat/dark correction: the mean flat ``F`` and dark ``D`` fields give the incident counts
  ``I0 = F - D`` and the background ``D`` of each cell;
* rotation centre from the projections' centres of mass (Helgason-Ludwig,
  :func:`~diffinv.datasets.data_exchange.estimate_rotation_center`);
* likelihood: raw counts ``y ~ Poisson(I0 exp(-A x) + D)``
  (:class:`~diffinv.operators.ct.TransmissionPoisson`) of one detector row;
* the full detector width, binned onto a 128 x 128 grid (640 cells -> 128 pixels of 5 cells),
  image centred on the rotation axis, attenuation per detector cell (the files carry no
  pixel size; NIfTI voxels are given in detector cells).  Finer grids fit the counts better
  (a maximum-likelihood fit reaches reduced chi^2 87 / 17 / 6.8 at 32 / 64 / 128 pixels on
  the shared tooth scan: at 20 cells per pixel the model itself is the misfit);
* prior: the shipped learned ``ct-anatomy`` prior (fully convolutional, trained on crops of
  anatomical slices), rescaled so its data range spans the attenuation range of the
  filtered back-projection of the same data (an empirical scale, recorded as
  ``prior_scale``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..datasets.data_exchange import estimate_rotation_center, read_data_exchange_counts
from ..demos.ct import transmission_curvature
from ..demos.registry import Demo
from ..operators.ct import ParallelBeamRadon, TransmissionPoisson
from ..operators.problem import InverseProblem
from .priors import ScaledPrior

__all__ = ["load_ct"]


def _read(path: Path, row: int):
    try:
        scan = read_data_exchange_counts(path, rows=row)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: not a readable Data Exchange file ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return scan


def load_ct(path: Path, prior=None, row: int = 0, image_size: int = 128) -> Demo:
    """Build the CT problem of one detector row of a Data Exchange file (see module notes)."""
    scan = _read(path, row)
    data = torch.from_numpy(scan.data)[:, None]  # (1, 1, A, D) raw counts
    flat = torch.from_numpy(scan.flat)[:, None, None]
    dark = torch.from_numpy(scan.dark)[:, None, None]
    if bool((flat <= dark).any()):
        raise ValueError(f"{path}: flat field not above the dark field in some cells")
    angles = torch.from_numpy(scan.angles)
    ell_full = -torch.log(((data - dark) / (flat - dark)).clamp(min=1e-6))
    center = estimate_rotation_center(ell_full, angles)
    n_cols = data.shape[-1]
    b = n_cols // image_size
    if b < 1:
        raise ValueError(f"{path}: {n_cols} detector columns, fewer than {image_size} pixels")
    cols = slice(0, b * image_size)  # the full width (up to n_cols mod image_size cells)

    def binned(t: torch.Tensor) -> torch.Tensor:
        t = t[..., cols]
        return t.reshape(*t.shape[:-1], image_size, b).sum(-1)

    counts = binned(data).to(torch.float64)
    i0 = binned(flat - dark).expand_as(counts).to(torch.float64)
    bg = binned(dark).expand_as(counts).to(torch.float64)
    axis = (center - (b - 1) / 2) / b
    op = ParallelBeamRadon(image_size, angles, n_detectors=image_size,
                           detector_spacing=float(b), pixel_size=float(b), rotation_center=axis)
    line = -torch.log(((counts - bg) / i0).clamp(min=1e-6))
    fbp = op.fbp(line.to(torch.float64))
    if prior is None:
        from ..priors import load

        prior = load("ct-anatomy")
    scale = float(fbp.max()) / float(prior.data_range[1])
    scaled = ScaledPrior(prior, scale)
    noise = TransmissionPoisson(I0=i0[0].to(torch.float32), dark=bg[0].to(torch.float32))
    problem = InverseProblem(op, noise, counts.to(torch.float32))
    settings = {
        "row": int(row),
        "flat_dark_correction": "I0 = mean flat - mean dark; background = mean dark",
        "rotation_center_cell": center,
        "bin_cells": b,
        "detector_columns_used": b * image_size,
        "likelihood": "transmission Poisson on raw counts",
        "prior_scale": scale,
    }
    return Demo(
        problem=problem,
        prior=scaled,
        x_true=None,
        description=(
            f"{path.name} row {row}: {image_size}x{image_size} image (attenuation per detector "
            f"cell) over {b * image_size} of {n_cols} detector columns, {len(angles)} views, "
            "transmission Poisson counts"
        ),
        solver_defaults={
            "solver": "daps",
            "steps": 50,
            "options": {"ode_steps": 1, "data_step": "hmc", "langevin_steps": 10,
                        "lipschitz": transmission_curvature(op, counts.to(torch.float32))},
        },
        to_image=lambda x: x[:, 0],
        metadata={
            "kind": "ct",
            "units": "1/detector-cell",
            "physical_range": (0.0, float("inf")),  # attenuation is non-negative
            "files": [str(path)],
            "label": f"{path.name} row {row}",
            "pixel_size_mm": (float(b), float(b)),
            "voxel_size_mm": (float(b), float(b), 1.0),
            "axis_unit": "detector cells",
            "length_unit": "detector cell (the file gives no pixel size)",
            "settings": settings,
            "fbp": fbp[0, 0].tolist(),
            "data_product": "counts",
        },
    )
