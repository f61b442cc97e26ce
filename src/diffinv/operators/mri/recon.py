"""Classical MRI reconstructions: baselines and initialisations for posterior sampling.

* :func:`zero_filled_rss` — inverse FFT of zero-filled k-space per coil, root-sum-of-squares;
* :func:`cg_sense` — conjugate gradients on ``(A^H A + lambda I) x = A^H y`` (Pruessmann et al.
  2001, MRM 46:638) for any linear MRI operator (uses its cheap ``normal``);
* :func:`gridding_recon` — density-compensated adjoint for non-Cartesian data;
* :func:`l1_wavelet_recon` — compressed sensing with an l1 penalty on Daubechies wavelets
  (Lustig et al. 2007, MRM 58:1182) through :class:`sigpy.mri.app.L1WaveletRecon`.
"""

from __future__ import annotations

import numpy as np
import torch

from ...extras import require
from ..base import LinearOperator
from ..noise import check_finite
from .cartesian import MultiCoilMRI
from .coils import rss
from .fft import ifft2c
from .noncartesian import NonCartesianMRI

__all__ = ["zero_filled_rss", "cg_sense", "gridding_recon", "l1_wavelet_recon"]


def zero_filled_rss(kspace: torch.Tensor) -> torch.Tensor:
    """Root-sum-of-squares of the coil images of zero-filled Cartesian k-space.

    Parameters
    ----------
    kspace : torch.Tensor
        ``(batch, coils, H, W)`` complex, zeros where not acquired.

    Returns
    -------
    torch.Tensor
        ``(batch, 1, H, W)`` real magnitude image.
    """
    check_finite("kspace", kspace)
    if kspace.ndim != 4:
        raise ValueError(f"kspace: expected (batch, coils, H, W), got {tuple(kspace.shape)}")
    return rss(ifft2c(kspace), dim=1).unsqueeze(1)


def cg_sense(
    op: LinearOperator,
    y: torch.Tensor,
    lam: float = 0.0,
    n_iter: int = 30,
    tol: float = 1e-6,
    x0: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Conjugate-gradient SENSE: minimise ``||A x - y||^2 + lam ||x||^2``.

    Solves the normal equations ``(A^H A + lam I) x = A^H y`` with (complex) CG, batched:
    each item stops updating once its residual norm falls below ``tol`` times ``||A^H y||``.

    Parameters
    ----------
    op : LinearOperator
        E.g. :class:`MultiCoilMRI` or :class:`NonCartesianMRI` (``op.normal`` is used).
    y : torch.Tensor
        Data ``(batch, *op.out_shape)``.
    lam : float
        Tikhonov weight (>= 0).
    n_iter : int
        Maximum iterations.
    tol : float
        Relative residual tolerance.
    x0 : torch.Tensor, optional
        Starting image (default zeros).

    Returns
    -------
    torch.Tensor
        ``(batch, 1, H, W)`` complex image.
    """
    check_finite("y", y)
    if lam < 0:
        raise ValueError(f"lam: expected a non-negative number, got {lam!r}")
    rhs = op.adjoint(y)
    dims = tuple(range(1, rhs.ndim))

    def apply(v: torch.Tensor) -> torch.Tensor:
        out = op.normal(v)
        return out + lam * v if lam else out

    x = torch.zeros_like(rhs) if x0 is None else x0.to(rhs.dtype).clone()
    r = rhs - apply(x) if x0 is not None else rhs.clone()
    p = r.clone()
    rs = (r.abs() ** 2).sum(dims)
    stop = (tol**2) * (rhs.abs() ** 2).sum(dims)
    shape = (-1,) + (1,) * (rhs.ndim - 1)
    for _ in range(n_iter):
        active = rs > stop
        if not bool(active.any()):
            break
        ap = apply(p)
        denom = (p.conj() * ap).sum(dims).real
        alpha = torch.where(active, rs / denom.clamp(min=torch.finfo(denom.dtype).tiny), 0.0)
        x = x + alpha.reshape(shape) * p
        r = r - alpha.reshape(shape) * ap
        rs_new = (r.abs() ** 2).sum(dims)
        beta = torch.where(active, rs_new / rs.clamp(min=torch.finfo(rs.dtype).tiny), 0.0)
        p = r + beta.reshape(shape) * p
        rs = torch.where(active, rs_new, rs)
    return x


def gridding_recon(op: NonCartesianMRI, y: torch.Tensor, dcf: torch.Tensor | None = None,
                   n_iter: int = 20) -> torch.Tensor:
    """Density-compensated adjoint ``A^H (w * y)`` (Pipe-Menon weights computed if omitted)."""
    check_finite("y", y)
    w = op.density_compensation(n_iter) if dcf is None else dcf
    return op.adjoint(y * w.to(device=y.device, dtype=y.real.dtype))


def l1_wavelet_recon(
    op: MultiCoilMRI | NonCartesianMRI,
    y: torch.Tensor,
    lam: float = 1e-3,
    n_iter: int = 100,
    wave_name: str = "db4",
) -> torch.Tensor:
    """l1-wavelet compressed sensing with sigpy, for each batch item.

    Minimises ``1/2 ||A x - y||^2 + lam ||Psi x||_1`` with ``Psi`` a Daubechies wavelet
    transform by sigpy's FISTA/ADMM app.  Runs on CPU through NumPy.

    Returns
    -------
    torch.Tensor
        ``(batch, 1, H, W)`` complex image on ``y``'s device.
    """
    L1WaveletRecon = require("sigpy.mri.app", purpose="L1-wavelet reconstruction").L1WaveletRecon

    check_finite("y", y)
    if op.coil_maps is None:
        maps = np.ones((1, *op.image_shape), dtype=np.complex128)
    else:
        maps = op.coil_maps.detach().cpu().numpy().astype(np.complex128)
    kw: dict = {}
    if isinstance(op, MultiCoilMRI):
        kw["weights"] = op.mask.cpu().numpy().astype(np.float64)
    elif isinstance(op, NonCartesianMRI):
        traj = op.trajectory.detach().cpu().to(torch.float64).numpy()
        kw["coord"] = traj * np.array(op.image_shape, dtype=np.float64) / (2 * np.pi)
    else:
        raise ValueError("op: expected a MultiCoilMRI or NonCartesianMRI operator")
    outs = []
    for item in y.detach().cpu().numpy().astype(np.complex128):
        app = L1WaveletRecon(item, maps, lam, wave_name=wave_name, max_iter=n_iter,
                             show_pbar=False, **kw)
        outs.append(torch.from_numpy(np.asarray(app.run())))
    return torch.stack(outs)[:, None].to(device=y.device, dtype=y.dtype)
