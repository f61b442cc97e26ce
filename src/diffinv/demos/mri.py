"""Multi-coil Cartesian MRI demo: 8 simulated coils, R = 4, a Gaussian (PCA) image prior.

The truth is a complex Shepp-Logan-type phantom with smooth phase (an unseen member of a
family with random tissue intensities and phases); the data are 8-coil k-space on a
fastMRI-style equispaced R = 4 line mask with complex Gaussian noise.  The prior is an
analytic low-rank-plus-isotropic Gaussian fitted to other members of the family (an exact
denoiser; swap in a learned MRI prior through the ``prior`` argument of
:func:`make_mri_problem`).  The prior sees complex images as 2 real channels through
:class:`~diffinv.operators.RealToComplex`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..datasets.mri_phantoms import mri_phantom
from ..datasets.registry import random_complex_phantoms
from ..operators import GaussianNoise, InverseProblem, RealToComplex
from ..operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask
from ..priors import sigma_per_item
from .prior_choice import prior_for_problem
from .registry import Demo, register_demo

__all__ = ["LowRankGaussianPrior", "phantom_family_prior", "make_mri_problem", "build"]


class LowRankGaussianPrior:
    r"""Gaussian prior ``N(m, Q diag(lam) Q^T + tau^2 I)`` with an exact denoiser.

    .. math::
        D(x, \sigma) = m + Q\,\mathrm{diag}\!\Big(\frac{\lambda + \tau^2}{\lambda + \tau^2 +
        \sigma^2}\Big) Q^T (x - m) + \frac{\tau^2}{\tau^2 + \sigma^2} (I - Q Q^T)(x - m)

    (probabilistic PCA, Tipping & Bishop 1999), so images of any size cost ``O(n r)``.

    Parameters
    ----------
    mean : torch.Tensor
        Mean with the event shape, e.g. ``(2, H, W)``.
    basis : torch.Tensor
        ``(n, r)`` orthonormal columns ``Q``.
    eigvals : torch.Tensor
        ``(r,)`` non-negative variances along the columns (in addition to ``tau^2``).
    tau : float
        Isotropic standard deviation (> 0).
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor, eigvals: torch.Tensor,
                 tau: float, sigma_max: float = 80.0):
        if not tau > 0:
            raise ValueError(f"tau: expected a positive number, got {tau!r}")
        self.event_shape = tuple(mean.shape)
        self.mean = mean.reshape(-1).to(torch.float64)
        if basis.shape != (self.mean.numel(), eigvals.numel()):
            raise ValueError(f"basis: expected ({self.mean.numel()}, {eigvals.numel()}), got "
                             f"{tuple(basis.shape)}")
        self.basis = basis.to(torch.float64)
        self.eigvals = eigvals.to(torch.float64).clamp(min=0.0)
        self.tau = float(tau)
        self.sigma_min = 0.0
        self.sigma_max = float(sigma_max)

    @classmethod
    def fit(cls, samples: torch.Tensor, rank: int, tau: float, **kw) -> LowRankGaussianPrior:
        """Fit mean and the top-``rank`` principal components of ``samples`` ``(N, ...)``."""
        flat = samples.reshape(samples.shape[0], -1).to(torch.float64)
        mean = flat.mean(0)
        u, s, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        rank = min(rank, vh.shape[0])
        eig = s[:rank] ** 2 / max(flat.shape[0] - 1, 1)
        return cls(mean.reshape(samples.shape[1:]), vh[:rank].T.contiguous(), eig, tau, **kw)

    def to(self, device: torch.device | str) -> LowRankGaussianPrior:
        """Move tensors to ``device`` (in place); returns self."""
        self.mean, self.basis, self.eigvals = (t.to(device) for t in
                                               (self.mean, self.basis, self.eigvals))
        return self

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """Exact ``E[x0 | x0 + sigma eps = x]``."""
        s2 = sigma_per_item(sigma, x)[:, None] ** 2
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.mean.numel():
            raise ValueError(f"x: expected images of shape {self.event_shape}, got "
                             f"{tuple(x.shape[1:])}")
        q = self.basis.to(flat.dtype)
        d = flat - self.mean.to(flat.dtype)
        coef = d @ q
        t2 = self.tau**2
        lam = self.eigvals.to(flat.dtype) + t2
        iso = t2 / (t2 + s2)
        out = self.mean.to(flat.dtype) + iso * (d - coef @ q.T) + ((lam / (lam + s2)) * coef) @ q.T
        return out.reshape(x.shape)

    def precision_apply(self, x: torch.Tensor) -> torch.Tensor:
        """``C^{-1} x`` for a batch (for exact MAP / posterior-mean solves)."""
        flat = x.reshape(x.shape[0], -1)
        q = self.basis.to(flat.dtype)
        coef = flat @ q
        t2 = self.tau**2
        lam = self.eigvals.to(flat.dtype) + t2
        out = (flat - coef @ q.T) / t2 + (coef / lam) @ q.T
        return out.reshape(x.shape)


def phantom_family_prior(size: int, n_train: int = 200, rank: int = 64, tau: float = 0.02,
                         seed_offset: int = 10_000) -> LowRankGaussianPrior:
    """PCA prior over ``(2, size, size)`` real/imag phantoms with random intensities/phases.

    Training phantoms use seeds ``seed_offset .. seed_offset + n_train - 1`` (disjoint from
    the demo truths, which use small seeds).
    """
    train = torch.cat([
        RealToComplex().adjoint(mri_phantom((size, size), seed=seed_offset + i,
                                            dtype=torch.complex128, intensity_jitter=0.3))
        for i in range(n_train)
    ])
    return LowRankGaussianPrior.fit(train, rank=rank, tau=tau)


def make_mri_problem(
    size: int = 64,
    n_coils: int = 8,
    acceleration: float = 4,
    center_fraction: float | None = None,
    noise_sigma: float = 0.005,
    seed: int = 0,
    prior: Callable | None = None,
    dtype: torch.dtype = torch.complex64,
    phantom: str = "shepp-logan",
    truth: torch.Tensor | None = None,
) -> tuple[InverseProblem, Callable, torch.Tensor, MultiCoilMRI]:
    """Simulated multi-coil Cartesian problem in the prior's real 2-channel frame.

    Returns ``(problem, prior, x_true_real, mri_operator)`` where ``problem.operator`` is
    ``MultiCoilMRI @ RealToComplex`` (input ``(batch, 2, H, W)`` real) and ``x_true_real``
    is the truth as ``(1, 2, H, W)``.  ``prior=None`` uses :func:`phantom_family_prior`.
    ``phantom``: ``"shepp-logan"`` (:func:`~diffinv.datasets.mri_phantoms.mri_phantom` with
    jittered tissue intensities) or ``"random"`` (a draw of
    :func:`~diffinv.datasets.registry.random_complex_phantoms`, the family the shipped
    ``mri-phantom`` prior was trained on, with generator seed ``seed``).  ``truth`` (complex
    ``(1, 1, size, size)``, magnitude ~[0, 1]) replaces either; ``seed`` still fixes the mask
    offset and the noise.
    """
    g = torch.Generator().manual_seed(seed)
    cf = center_fraction if center_fraction is not None else (0.08 if acceleration <= 4 else 0.04)
    if truth is not None:
        if tuple(truth.shape) != (1, 1, size, size) or not truth.is_complex():
            raise ValueError(f"truth: expected a complex (1, 1, {size}, {size}) image, got "
                             f"{tuple(truth.shape)} {truth.dtype}")
        x_true = truth.to(dtype)
    elif phantom == "shepp-logan":
        x_true = mri_phantom((size, size), seed=seed, dtype=dtype, intensity_jitter=0.3)
    elif phantom == "random":
        x_true = random_complex_phantoms(1, size, torch.Generator().manual_seed(seed)).to(dtype)
    else:
        raise ValueError(f"phantom: expected 'shepp-logan' or 'random', got {phantom!r}")
    maps = birdcage_maps((size, size), n_coils, dtype=dtype)
    mask = cartesian_mask((size, size), acceleration, cf, "equispaced", seed=seed)
    mri = MultiCoilMRI(maps, mask)
    # white coil noise, sigma per real part, on the acquired entries only: the same model as
    # CoilNoise(2 sigma^2 I, mask), but a GaussianNoise, so the exact (CG / SVD) data steps
    # apply; correlated coil noise would go through CoilNoise.whitened
    noise = GaussianNoise(noise_sigma, mask=mask)
    y = noise.sample(mri(x_true), generator=g)
    adapter = RealToComplex()
    problem = InverseProblem(mri @ adapter, noise, y, image_shape=(2, size, size))
    prior = prior if prior is not None else phantom_family_prior(size)
    x_real = adapter.adjoint(x_true).to(x_true.real.dtype)
    return problem, prior, x_real, mri


def mri_curvature(mri: MultiCoilMRI, noise_sigma: float) -> float:
    """Bound ``max_pixel sum_c |S_c|^2 / sigma^2`` on the curvature of ``-log p(y | x)``.

    ``sigma`` is the noise standard deviation per real part; units 1 / image units^2.
    """
    return float((mri.coil_maps.abs() ** 2).sum(0).max()) / float(noise_sigma) ** 2


@register_demo("mri-multicoil")
def build(seed: int = 0, size: int = 64, acceleration: float = 4, n_coils: int = 8,
          noise_sigma: float = 0.005, prior: Callable | str | None = None,
          phantom: str = "shepp-logan") -> Demo:
    """Complex 64x64 brain-like phantom from 8-coil Cartesian k-space at R=4.

    ``seed`` fixes the phantom, the mask offset and the noise.  ``prior``: a denoiser, a
    shipped prior's name or a checkpoint path (checked for channels, size limits and
    units), ``"learned"`` for the shipped ``mri-phantom`` prior, or ``None``/``"pca"`` for
    the PCA prior of :func:`phantom_family_prior`.  PCA stays the default because it is an
    exact denoiser fitted to the phantom family the truth comes from, whose exact posterior
    mean ``benchmarks/mri_reconstruction.py`` uses as the ceiling a sampler can reach; the
    learned real-size problems are ``mri-brain-r4`` and ``mri-brain-r8`` (:mod:`.realsize`).
    ``phantom``: ``"shepp-logan"`` or ``"random"`` (held-out draws of the learned prior's
    training family; see :func:`make_mri_problem`).
    """
    if prior == "pca":
        prior = None
    elif prior == "learned":
        prior = "mri-phantom"
    if isinstance(prior, str):
        prior = prior_for_problem(prior, "mri-multicoil", (2, size, size), ("complex",),
                                  "complex images (real, imag), magnitude ~[0, 1]")
    name = "PCA Gaussian prior" if prior is None else (
        f"prior {getattr(prior, 'card', {}).get('name') or type(prior).__name__!r}")
    problem, den, x_true, mri = make_mri_problem(size, n_coils, acceleration,
                                                 noise_sigma=noise_sigma, seed=seed,
                                                 prior=prior, phantom=phantom)
    return Demo(
        problem=problem,
        prior=den,
        x_true=x_true,
        description=(
            f"{size}x{size} complex head phantom (dimensionless magnitude, real/imag as 2 "
            f"channels) from {n_coils}-coil Cartesian k-space, equispaced R={acceleration} "
            f"({mri.acceleration:.2f} actual) with complex Gaussian noise sigma={noise_sigma} "
            f"per real part; {name}"
        ),
        # DPS's literal "likelihood" rule diverges at this SNR and its paper rule is
        # sensitive to zeta; the noise is a (masked) GaussianNoise, so PiGDM, DAPS and DiffPIR
        # take their exact CG data steps and PiGDM is the best here (figures:
        # benchmarks/README.md, "Built-in problems"); DDRM needs a dense SVD (too large)
        solver_defaults={"solver": "pigdm", "steps": 50},
        to_image=lambda x: torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2),
        metadata={"units": "dimensionless", "modality": "MRI", "coils": n_coils,
                  "acceleration": float(acceleration), "k_space": "orthonormal centred FFT"},
    )
