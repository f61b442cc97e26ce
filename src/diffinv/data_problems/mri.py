"""Multi-coil Cartesian k-space files -> a SENSE problem at the file's own resolution.

Defaults an MRI user would choose, all recorded in the output:

* k-space (first slice) from fastMRI HDF5, BART ``.cfl/.hdr`` (BART's own layout)
  or ``.npy`` ``(coils, H, W)`` (:func:`~diffinv.datasets.mri_io.load_kspace`);
* sampling mask: the k-space locations that are nonzero in any coil;
* coil maps: ESPIRiT (Uecker et al. 2014) from the automatically detected fully sampled
  centre (:func:`~diffinv.operators.mri.espirit_maps` refuses when there is none), kept over
  the whole field of view (no eigenvalue crop: every pixel is seen by the data, so the prior
  cannot paint unobserved air); refused when the cropped maps miss the object
  (:func:`check_maps_cover`);
* noise: sigma per real part estimated from the data
  (:func:`~diffinv.operators.mri.noise_level.kspace_noise_sigma`: robust MAD over the
  object-free readout positions in hybrid space, or over the outer k-space, whichever is
  smaller; the method is recorded);
* normalisation: k-space divided by the largest zero-filled root-sum-of-squares magnitude,
  so images have magnitude ~[0, 1] as the shipped MRI priors expect (the factor
  is recorded as ``normalisation``; multiply images by it to return to file units);
* prior: the learned ``mri-anatomy`` prior (brain-like complex slices, trained on crops),
  fully convolutional, applied at the file's size (any ``H x W``, square or not);
* solver: DAPS with conjugate-gradient data steps (50 levels, 10 CG iterations per step
  started from the denoiser's estimate), as the built-in ``mri-brain-r*`` problems
  (:data:`diffinv.demos.realsize.MRI_SOLVER_DEFAULTS`);
* baselines on the same data (``summary.json``): CG-SENSE with the iteration count and
  L1-wavelet with the lambda chosen by the discrepancy principle (reduced chi^2 nearest 1).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..datasets.mri_io import load_kspace
from ..demos.realsize import MRI_SOLVER_DEFAULTS
from ..demos.registry import Demo
from ..operators import GaussianNoise, InverseProblem, RealToComplex
from ..operators.mri import MultiCoilMRI, cg_sense, espirit_maps, l1_wavelet_recon
from ..operators.mri.noise_level import kspace_noise_sigma
from .priors import ScaledPrior

__all__ = ["load_mri", "mri_baselines", "check_maps_cover", "MIN_MAP_COVER"]


def load_mri(path: Path, prior=None, slice_index: int = 0) -> Demo:
    """Build the multi-coil problem of one slice of a k-space file (see module notes)."""
    try:
        k = load_kspace(path, slice_index).to(torch.complex64)
        mask = (k.abs() > 0).any(0)
        check_maps_cover(k, espirit_maps(k))
        # maps over the whole field of view (no eigenvalue crop): pixels where cropped maps
        # are zero would be unobserved, and a learned prior fills them with its own draws
        maps = espirit_maps(k, crop=0.0).to(torch.complex64)
    except (OSError, KeyError) as err:
        raise ValueError(f"{path}: not a readable k-space file ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    c, h, w = k.shape
    from ..operators.mri import fft as mri_fft

    rss = mri_fft.ifft2c(k).abs().pow(2).sum(0).sqrt()
    scale = float(rss.max())
    if not scale > 0:
        raise ValueError(f"{path}: k-space is all zeros")
    y = (k / scale)[None]
    sigma, noise_method = kspace_noise_sigma(y[0], mask)
    mri = MultiCoilMRI(maps, mask)
    problem = InverseProblem(mri @ RealToComplex(), GaussianNoise(sigma, mask=mask), y,
                             image_shape=(2, h, w))
    if prior is None:
        from ..priors import load

        prior = load("mri-anatomy")
    accel = float(mask.numel() / mask.sum())
    settings = {
        "slice": int(slice_index),
        "coils": c,
        "mask": f"nonzero k-space ({float(mask.float().mean()):.3f} sampled, R={accel:.2f})",
        "coil_maps": "ESPIRiT from the detected fully sampled centre, whole field of view",
        "noise_sigma": sigma,
        "noise_estimate": noise_method,
        "normalisation": scale,
    }
    return Demo(
        problem=problem,
        prior=ScaledPrior(prior, 1.0, image_shape=(2, h, w)),
        x_true=None,
        description=(
            f"{path.name} slice {slice_index}: {h}x{w} complex image (k-space units / "
            f"{scale:.3g}) from {c}-coil Cartesian k-space, R={accel:.2f}"
        ),
        # the built-in 128x128 MRI problems' default (DAPS, 10 CG iterations per data step,
        # one denoiser call per level), measured against CG-SENSE and L1-wavelet there and on a
        # 180x230 file (benchmarks/README.md); PiGDM backpropagates through the UNet
        solver_defaults=copy.deepcopy(MRI_SOLVER_DEFAULTS),
        to_image=lambda x: torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2),
        metadata={
            "kind": "mri",
            "units": "normalised magnitude",
            "files": [str(path)],
            "label": f"{path.name} slice {slice_index}",
            "pixel_size_mm": (1.0, 1.0),
            "voxel_size_mm": (1.0, 1.0, 1.0),
            "axis_unit": "pixels (the file gives no voxel size)",
            "settings": settings,
            "data_product": "kspace",
        },
    )


#: the ESPIRiT maps must cover this fraction of the calibration image's energy (below it the
#: calibration region was too small and the maps were cropped away inside the object; measured:
#: >= 0.98 on package-written scans with enough ACS lines, <= 0.43 when too few)
MIN_MAP_COVER = 0.9


def check_maps_cover(kspace: torch.Tensor, maps: torch.Tensor) -> float:
    """Fraction of the calibration image's energy inside the coil maps' support.

    The calibration image is the root-sum-of-squares of the fully sampled k-space centre
    alone (a blurred, alias-free image of the object).  ESPIRiT sets the maps to zero where
    its eigenvalue falls below the crop threshold; with too small a calibration region that
    happens inside the object and no reconstruction can recover those pixels.

    Parameters
    ----------
    kspace : torch.Tensor
        ``(coils, H, W)`` complex k-space (zero where not acquired).
    maps : torch.Tensor
        ``(coils, H, W)`` complex coil maps from :func:`~diffinv.operators.mri.espirit_maps`
        with its eigenvalue crop (zero outside their support).

    Returns
    -------
    float
        The fraction, in [0, 1].

    Raises
    ------
    ValueError
        When the fraction is below :data:`MIN_MAP_COVER`, naming the calibration size.
    """
    from ..operators.mri import fft as mri_fft
    from ..operators.mri.coils import fully_sampled_centre

    c = fully_sampled_centre(kspace)
    h, w = kspace.shape[-2:]
    r0, c0 = h // 2 - c // 2, w // 2 - c // 2
    centre = torch.zeros_like(kspace)
    centre[:, r0:r0 + c, c0:c0 + c] = kspace[:, r0:r0 + c, c0:c0 + c]
    energy = mri_fft.ifft2c(centre).abs().pow(2).sum(0)
    inside = maps.abs().pow(2).sum(0) > 0.5
    cover = float(energy[inside].sum() / energy.sum())
    if not cover >= MIN_MAP_COVER:
        raise ValueError(
            f"kspace: the ESPIRiT coil maps cover only {100 * cover:.0f} % of the object "
            f"(energy of the calibration image; expected >= {100 * MIN_MAP_COVER:.0f} %): the "
            f"fully sampled centre ({c} x {c} samples) is too small for this image; acquire "
            "more central lines or give coil maps"
        )
    return cover


def mri_baselines(demo: Demo, mean: torch.Tensor) -> dict:
    """CG-SENSE (iterations) and L1-wavelet (lambda) chosen by reduced chi^2 nearest 1.

    Returns each baseline's choice, its reduced chi^2 and its relative l2 distance to the
    posterior mean magnitude ``mean`` ``(H, W)``.
    """
    problem = demo.problem
    mri = problem.operator.outer  # MultiCoilMRI @ RealToComplex
    y = problem.y

    def chi2(x: torch.Tensor) -> float:
        return float(problem.noise.chi2(y, mri(x))[0]) / problem.noise.n_data(y)

    out = {}
    for name, grid, fn in (
        ("cg_sense_iterations", (3, 5, 10, 20, 40), lambda v: cg_sense(mri, y, n_iter=v)),
        ("l1_wavelet_lambda", (1e-4, 1e-3, 1e-2), lambda v: l1_wavelet_recon(mri, y, lam=v)),
    ):
        runs = [(v, fn(v)) for v in grid]
        best_v, best_x = min(runs, key=lambda r: abs(chi2(r[1]) - 1.0))
        mag = best_x.abs().reshape(mean.shape)
        out[name] = {
            "choice": best_v,
            "reduced_chi2": chi2(best_x),
            "relative_l2_to_posterior_mean": float((mag - mean).norm() / mean.norm()),
        }
    return out
