r"""Wirtinger flow (Candès, Li & Soltanolkotabi, IEEE Trans. Inf. Theory 61, 1985, 2015).

Gradient descent on the intensity misfit of ``y = |B x|^2`` from a spectral initialisation:

* **spectral start**: the leading eigenvector of ``Y = (1/c) B^H diag(y) B`` (power
  iterations), scaled to the norm ``||x||^2 ~ sum(y) / c``, where ``c = tr(B^H B) / n``
  normalises ``B`` (``c = L`` for ``L`` unit-modulus coded-diffraction masks with the
  orthonormal DFT, so ``B^H B / c = I`` as for the paper's ``(1/m) sum a_r a_r^H``);
* **gradient steps**: the paper's rows ``a_r`` are ours rescaled by ``s = sqrt(m / c)``
  (``m`` = number of measurements) so that ``(1/m) sum a_r a_r^H = I``; in our units its
  Wirtinger gradient of ``f(z) = (1/2m) sum (|a_r^H z|^2 - y_r)^2`` reads
  ``grad f = (m / c^2) B^H((|Bz|^2 - y) \odot Bz)`` and the iteration is

  .. math:: z_{t+1} = z_t - \frac{\mu_t}{\|z_0\|^2}\, \nabla f(z_t),\qquad
            \mu_t = \min(1 - e^{-t/t_0}, \mu_{max})

  with the paper's coded-diffraction choices ``t0 = 330``, ``mu_max = 0.2``.

Works for any :class:`~diffinv.operators.phase_retrieval.IntensityOperator` (its ``.linear``
is ``B``); intended for coded diffraction patterns, where it provably recovers ``x`` up to a
global phase.  ``real=True`` keeps the iterate real (projected Wirtinger flow; the spectral
start is rotated by its dominant global phase before its real part is taken).
"""

from __future__ import annotations

import math

import torch

from ..noise import check_finite
from ._common import IntensityOperator, as_complex
from .projections import PhaseRetrievalResult, check_iterations

__all__ = ["wirtinger_flow", "spectral_init", "gram_scale"]


def gram_scale(op: IntensityOperator, like: torch.Tensor, n_probes: int = 8) -> float:
    """``c = tr(B^H B) / n``: exact for coded diffraction, else estimated with random probes."""
    lin = op.linear
    if hasattr(lin, "gram_diagonal"):
        return float(lin.gram_diagonal().mean())
    g = torch.Generator(device=like.device).manual_seed(0)
    z = torch.randn((n_probes, *op.in_shape), dtype=like.dtype, device=like.device, generator=g)
    z = as_complex(z)
    return float((lin.forward(z).abs() ** 2).sum() / (z.abs() ** 2).sum())


def spectral_init(
    op: IntensityOperator,
    y: torch.Tensor,
    n_power: int = 50,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Spectral estimate ``(batch, *op.in_shape)`` complex from intensities ``y``."""
    lin = op.linear
    inten = y if op.measure == "intensity" else y**2
    cdt = as_complex(y[..., :0]).dtype
    c = gram_scale(op, y.real if y.is_complex() else y)
    shape = (y.shape[0], *op.in_shape)
    z = torch.randn(shape, dtype=cdt, device=y.device, generator=generator)
    for _ in range(n_power):
        z = lin.adjoint(inten * lin.forward(z)) / c
        z = z / z.reshape(z.shape[0], -1).norm(dim=1).reshape(-1, 1, 1, 1).clamp(min=1e-300)
    scale = torch.sqrt(inten.reshape(y.shape[0], -1).sum(1).clamp(min=0) / c)
    return z * scale.reshape(-1, 1, 1, 1)


def wirtinger_flow(
    op: IntensityOperator,
    y: torch.Tensor,
    n_iter: int = 500,
    *,
    mu_max: float = 0.2,
    t0: float = 330.0,
    real: bool = False,
    n_power: int = 50,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PhaseRetrievalResult:
    """Run Wirtinger flow.

    Parameters
    ----------
    op : IntensityOperator
        E.g. :class:`~diffinv.operators.phase_retrieval.CodedDiffraction`.
    y : torch.Tensor
        ``(batch, *op.out_shape)`` data (amplitude data are squared).
    n_iter : int
        Gradient iterations.
    mu_max, t0 : float
        Step schedule ``mu_t = min(1 - exp(-t / t0), mu_max)``.
    real : bool
        Keep the iterate real (for real objects).
    n_power : int
        Power iterations of the spectral start.
    x0 : torch.Tensor, optional
        Start ``(batch, *op.in_shape)`` instead of the spectral estimate.
    generator : torch.Generator, optional
        For the power iteration's random start (on ``y``'s device).

    Returns
    -------
    PhaseRetrievalResult
        ``x = z`` the final estimate (``(batch, *op.in_shape)``, real if ``real``);
        ``errors[t]`` the relative intensity misfit ``|| |Bz|^2 - y || / ||y||``.
    """
    check_iterations(n_iter)
    if not (0 < mu_max <= 1 and t0 > 0):
        raise ValueError(f"mu_max, t0: expected 0 < mu_max <= 1 and t0 > 0, got {mu_max}, {t0}")
    check_finite("y", y)
    if y.ndim != len(op.out_shape) + 1 or tuple(y.shape[1:]) != tuple(op.out_shape):
        raise ValueError(f"y: expected shape (batch, *{tuple(op.out_shape)}), got {tuple(y.shape)}")
    lin = op.linear
    inten = y if op.measure == "intensity" else y**2
    c = gram_scale(op, y)
    if x0 is not None:
        check_finite("x0", x0)
        z = as_complex(x0).to(as_complex(y[..., :0]).dtype).expand(y.shape[0], *op.in_shape)
        z = z.clone()
    else:
        z = spectral_init(op, y, n_power, generator)
    if real:
        # the spectral vector is e^{i phi} v with v ~ real: undo phi before taking Re, with
        # phi = arg(sum z^2) / 2, so that no energy is lost in the projection
        zz = (z * z).reshape(z.shape[0], -1).sum(1)
        z = as_complex((z * torch.exp(-0.5j * torch.angle(zz)).reshape(-1, 1, 1, 1)).real)
    norm0 = (z.abs() ** 2).reshape(z.shape[0], -1).sum(1).clamp(min=1e-300).reshape(-1, 1, 1, 1)
    m = math.prod(op.out_shape)
    ynorm = inten.reshape(y.shape[0], -1).norm(dim=1).clamp(min=1e-300)
    errors = []
    for t in range(1, n_iter + 1):
        bz = lin.forward(z)
        resid = bz.abs() ** 2 - inten
        grad = lin.adjoint(resid * bz) * (m / c**2)
        if real:
            grad = as_complex(grad.real)
        mu = min(1.0 - math.exp(-t / t0), mu_max)
        z = z - (mu / norm0) * grad
        errors.append(resid.reshape(y.shape[0], -1).norm(dim=1) / ynorm)
    x = z.real if real else z
    return PhaseRetrievalResult(
        x=x, z=z, errors=torch.stack(errors),
        info={"algorithm": "wirtinger_flow", "n_iter": n_iter, "mu_max": mu_max, "t0": t0},
    )
