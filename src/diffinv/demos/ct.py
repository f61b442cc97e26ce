"""CT demos: sparse-view parallel-beam CT with photon-counting noise, and the real APS tooth.

``ct-sparse-view``: a random-ellipse phantom (attenuation in 1/mm, 200 mm field of view) is
scanned by a parallel beam at a few views over 180 degrees; the data are photon counts
``Poisson(I0 exp(-A x))`` (:class:`~diffinv.operators.ct.noise.TransmissionPoisson`).

``ct-tooth``: one slice of the real APS tooth micro-CT scan (TomoPy test data, read from
``../shared/data/ct_tomopy_tooth`` or ``$DIFFINV_SHARED_DATA``), detector binned and views
thinned, reconstructed with the Gaussian log-data likelihood.  Units: attenuation per
detector-pixel length (the file gives no pixel size).

The prior is swappable: pass any denoiser ``prior(x, sigma)`` with event shape
``(1, size, size)`` in the same units, or a shipped prior's name or checkpoint path
(``--prior``; checked for channels, size limits and units).  ``ct-sparse-view`` defaults to
the learned ``ct-phantom`` prior at its default size (32), else to
:func:`phantom_gaussian_prior`: a Gaussian with the empirical mean and covariance of random
ellipse phantoms (exact denoiser, no training).  ``ct-tooth`` keeps its smooth Gaussian
prior (:func:`_tooth_prior`) by default: a named learned prior is rescaled to the scan's
units (:func:`_scaled_named_prior`), but measured against the full-data reconstruction it
did worse than the Gaussian (DAPS defaults, 4 chains: ct-phantom 25.0 dB, ct-anatomy
25.5 dB, Gaussian 26.1 dB; ``benchmarks/README.md``, "Built-in problems at 128x128 (issue
14)").  The learned real-size CT problems are in :mod:`.realsize`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from ..datasets.ct_phantoms import random_ellipse_phantoms
from ..operators import InverseProblem
from ..operators.ct import ParallelBeamRadon
from ..operators.ct.noise import TransmissionPoisson, gaussian_log_data
from ..priors import GaussianPrior
from .prior_choice import prior_for_problem
from .registry import Demo, register_demo

__all__ = ["phantom_gaussian_prior", "transmission_curvature", "build_sparse_view", "build_tooth"]


@functools.lru_cache(maxsize=4)
def phantom_gaussian_prior(
    size: int, n_train: int = 500, seed: int = 12345, shrinkage: float = 0.05
) -> GaussianPrior:
    """Gaussian prior fitted to random ellipse phantoms (1/mm), shrunk towards its diagonal.

    ``cov = (1 - s) C_emp + s diag(C_emp) + 1e-10 I``; ``sigma_max`` is set to 1/mm, fifty
    times the attenuation of water.  Cached per argument set (treat the result as
    read-only).
    """
    g = torch.Generator().manual_seed(seed)
    x = random_ellipse_phantoms(n_train, size, generator=g, dtype=torch.float64).reshape(
        n_train, -1
    )
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / (n_train - 1)
    cov = (1 - shrinkage) * cov + shrinkage * torch.diag(torch.diag(cov))
    cov = cov + 1e-10 * torch.eye(cov.shape[0], dtype=torch.float64)
    return GaussianPrior(mean.reshape(1, size, size), cov, sigma_max=1.0)


def transmission_curvature(op: ParallelBeamRadon, counts: torch.Tensor, iters: int = 30) -> float:
    r"""Largest eigenvalue of ``A^T diag(y) A`` (1 / image units^2), by power iteration.

    The Hessian of the transmission Poisson negative log-likelihood
    ``sum I0 exp(-A x) - y log(...)`` is ``A^T diag(I0 exp(-A x)) A``; at the data
    ``I0 exp(-A x) ~ y``, so this is the curvature near the posterior (the ``lipschitz``
    option of DAPS).  Deterministic start (all ones); ``counts`` has shape ``(1, *sinogram)``.
    """
    y = counts.detach()
    x = torch.ones((1, *op.in_shape), dtype=y.dtype, device=y.device)
    lam = 0.0
    for _ in range(iters):
        x = op.adjoint(y * op(x))
        lam = float(x.norm())
        x = x / lam
    return lam


@register_demo("ct-sparse-view")
def build_sparse_view(
    seed: int = 0,
    size: int = 32,
    n_angles: int = 16,
    I0: float = 1e4,
    fov_mm: float = 200.0,
    prior=None,
    noise: str = "counts",
) -> Demo:
    """Sparse-view CT of a random ellipse phantom from photon counts.

    Parameters
    ----------
    seed : int
        Fixes the phantom and the photon noise.
    size : int
        Image side in pixels.
    n_angles : int
        Views evenly spaced over [0, pi).
    I0 : float
        Incident photons per detector cell.
    fov_mm : float
        Field of view (mm); pixel size ``fov_mm / size``.
    prior : callable, str or {"auto", "learned", "gaussian"}, optional
        Denoiser for ``(1, size, size)`` images in 1/mm.  ``None``/``"auto"`` takes the
        shipped learned ``ct-phantom`` prior (trained on the same phantom generator) when its
        image size matches ``size`` (32), else :func:`phantom_gaussian_prior`.  Another
        string is a shipped prior's name or a checkpoint path
        (:func:`.prior_choice.prior_for_problem` checks channels, size limits, units).
    noise : {"counts", "post-log"}
        The likelihood.  ``"counts"``: transmission Poisson on the raw counts (nonlinear).
        ``"post-log"``: the same counts turned into line integrals ``-log(y / I0)`` with
        Gaussian errors of delta-method sigma ``sqrt(y) / y``
        (:func:`~diffinv.operators.ct.noise.gaussian_log_data`, the weighted-least-squares
        model of clinical reconstruction): a linear-Gaussian problem, where exact
        linear-Gaussian samplers (SMC/MCGdiff) apply.
    """
    if noise not in ("counts", "post-log"):
        raise ValueError(f"noise: expected 'counts' or 'post-log', got {noise!r}")
    size, n_angles = int(size), int(n_angles)
    g = torch.Generator().manual_seed(int(seed))
    pixel = float(fov_mm) / size
    op = ParallelBeamRadon(size, n_angles, detector_spacing=pixel, pixel_size=pixel)
    x_true = random_ellipse_phantoms(1, size, generator=g)
    counts_model = TransmissionPoisson(I0=float(I0))
    y = counts_model.sample(op(x_true), generator=g)
    if noise == "post-log":
        ell, log_noise = gaussian_log_data(y, float(I0))
        problem = InverseProblem(op, log_noise, ell)
    else:
        problem = InverseProblem(op, counts_model, y)
    return Demo(
        problem=problem,
        prior=_sparse_view_prior(prior, size),
        x_true=x_true,
        description=(
            f"{size}x{size} ellipse phantom (attenuation, 1/mm; {pixel:g} mm pixels) from "
            f"{n_angles} parallel-beam views with transmission Poisson counts, I0={float(I0):g}"
            + ("; post-log line integrals with Gaussian errors" if noise == "post-log" else "")
        ),
        solver_defaults=_sparse_view_defaults(op, y, noise),
        to_image=lambda x: x[:, 0],
        metadata={
            "units": "1/mm",
            "physical_range": (0.0, float("inf")),  # attenuation is non-negative
            "pixel_size_mm": pixel,
            "n_angles": n_angles,
            "I0": float(I0),
            "geometry": "parallel",
            "likelihood": noise,
        },
    )


def _sparse_view_defaults(op: ParallelBeamRadon, counts: torch.Tensor, noise: str) -> dict:
    """Solver defaults of ``ct-sparse-view`` for the counts or the post-log likelihood."""
    if noise == "post-log":  # linear-Gaussian: DAPS's exact (CG) data step
        return {"solver": "daps", "steps": 100, "options": {"ode_steps": 1}}
    # DAPS with HMC data steps, sized by the likelihood's curvature (very large here);
    # the comparison with FBP and DPS: benchmarks/README.md, "Built-in problems"
    return {
        "solver": "daps",
        "steps": 100,
        "options": {
            "ode_steps": 1,
            "data_step": "hmc",
            "langevin_steps": 10,
            "lipschitz": transmission_curvature(op, counts),
        },
    }


def _sparse_view_prior(prior, size: int):
    """Resolve the ``prior`` argument of the sparse-view demo."""
    if callable(prior):
        return prior
    if prior not in (None, "auto", "learned", "gaussian"):
        # a shipped prior's name or a checkpoint path, checked against the problem
        return prior_for_problem(prior, "ct-sparse-view", (1, size, size), ("attenuation",),
                                 "linear attenuation in 1/mm")
    if prior != "gaussian":
        from ..priors import load

        learned = load("ct-phantom")
        if tuple(learned.image_shape) == (1, size, size):
            return learned
        if prior == "learned":
            raise ValueError(
                f"prior: the shipped ct-phantom prior is {tuple(learned.image_shape)}, "
                f"not (1, {size}, {size})"
            )
    return phantom_gaussian_prior(size)


def _tooth_file() -> Path:
    env = os.environ.get("DIFFINV_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"
    path = root / "ct_tomopy_tooth" / "tooth.h5"
    if not path.is_file():
        raise FileNotFoundError(
            f"path: the tooth scan {str(path)!r} is not available (set DIFFINV_SHARED_DATA)"
        )
    return path


@register_demo("ct-tooth")
def build_tooth(
    seed: int = 0, row: int = 0, bin_factor: int = 16, view_step: int = 4, prior=None
) -> Demo:
    """One slice of the real APS tooth scan, binned to a small image (needs the shared data).

    The detector (640 cells) is cropped around the estimated rotation axis and binned by
    ``bin_factor``; every ``view_step``-th of the 181 views is kept.  The counts give the
    Gaussian log-data likelihood (sigma from the counts, delta method).  ``x_true`` is the
    full-data filtered back-projection at the same resolution (a reference, not the truth).
    """
    from ..datasets.data_exchange import estimate_rotation_center, read_data_exchange_counts

    del seed  # the data are fixed
    scan = read_data_exchange_counts(_tooth_file(), rows=int(row))
    data = torch.from_numpy(scan.data)[:, None]  # (1, 1, A, D) raw counts
    flat = torch.from_numpy(scan.flat)[:, None, None]
    dark = torch.from_numpy(scan.dark)[:, None, None]
    angles = torch.from_numpy(scan.angles)
    ell_full = -torch.log(((data - dark) / (flat - dark)).clamp(min=1e-6))
    center = estimate_rotation_center(ell_full, angles)
    b = int(bin_factor)
    half = int(min(center, data.shape[-1] - center) // b) * b
    c0 = round(center)
    cols = slice(c0 - half, c0 + half)
    n_det = 2 * half // b

    def binned(t: torch.Tensor) -> torch.Tensor:
        t = t[..., cols]
        return t.reshape(*t.shape[:-1], n_det, b).sum(-1)

    counts = binned(data - dark).clamp(min=0.0)  # dark-subtracted counts per binned cell
    blank = binned(flat - dark).expand_as(counts)
    axis = (center - (c0 - half) - (b - 1) / 2) / b
    full_op = ParallelBeamRadon(
        n_det,
        angles,
        n_detectors=n_det,
        detector_spacing=float(b),
        pixel_size=float(b),
        rotation_center=axis,
    )
    ell, _ = gaussian_log_data(counts.to(torch.float64), blank.to(torch.float64))
    reference = full_op.fbp(ell).to(torch.float32)
    keep = slice(None, None, int(view_step))
    op = ParallelBeamRadon(
        n_det,
        angles[keep],
        n_detectors=n_det,
        detector_spacing=float(b),
        pixel_size=float(b),
        rotation_center=axis,
    )
    y, noise = gaussian_log_data(
        counts[:, :, keep].to(torch.float32), blank[:, :, keep].to(torch.float32)
    )
    problem = InverseProblem(op, noise, y)
    if prior is None:
        prior = _tooth_prior(reference)
    elif isinstance(prior, str):
        prior = _scaled_named_prior(prior, reference)
    return Demo(
        problem=problem,
        prior=prior,
        x_true=reference,
        description=(
            f"APS tooth slice {row}: {n_det}x{n_det} image (attenuation per detector pixel) "
            f"from {op.n_angles} of 181 real parallel-beam views, Gaussian log-data noise"
        ),
        # the demo is meant for learned priors: with the placeholder Gaussian prior even the
        # exact posterior mean is far from the reference; DAPS with 30 CG iterations per
        # level gets close to it (figures: benchmarks/README.md, "Built-in problems")
        solver_defaults={
            "solver": "daps",
            "steps": 100,
            "options": {"ode_steps": 1, "cg_max_iter": 30},
        },
        to_image=lambda x: x[:, 0],
        metadata={
            "units": "1/detector-pixel",
            "physical_range": (0.0, float("inf")),  # attenuation is non-negative
            "n_angles": op.n_angles,
            "real_data": True,
            "rotation_center": center,
        },
    )


def _scaled_named_prior(spec: str, reference: torch.Tensor):
    """A named CT prior rescaled so its data range spans the reference's attenuation range.

    The scan's units (1 / detector pixel) are not the prior's (1/mm), so the prior is used
    in units ``scale`` times its own, ``scale = max(reference) / data_range[1]``, the
    empirical scale of ``reconstruct --data`` for CT (:mod:`diffinv.data_problems.ct`).
    """
    from ..data_problems.priors import ScaledPrior

    n = reference.shape[-1]
    prior = prior_for_problem(spec, "ct-tooth", (1, n, n), ("attenuation",),
                              "attenuation per detector pixel")
    hi = float(getattr(prior, "data_range", (0.0, 1.0))[1])
    return ScaledPrior(prior, float(reference.max()) / hi, image_shape=(1, n, n))


def _tooth_prior(reference: torch.Tensor) -> GaussianPrior:
    """Smooth Gaussian prior around zero with the reference's overall scale (no data leak)."""
    n = reference.shape[-1]
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    pts = torch.stack([ii.reshape(-1), jj.reshape(-1)], 1).to(torch.float64)
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    scale = float(reference.abs().max())
    cov = (0.5 * scale) ** 2 * torch.exp(-d2 / (2 * 1.5**2))
    cov = cov + 1e-6 * scale**2 * torch.eye(n * n, dtype=torch.float64)
    return GaussianPrior(torch.zeros(1, n, n), cov, sigma_max=20 * scale + 1e-12)
