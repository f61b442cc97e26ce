r"""Extended ptychographical iterative engine, object update with a known probe
(Maiden & Rodenburg, Ultramicroscopy 109, 1256, 2009).

For each scan position ``k`` (random order each sweep), with exit wave
``psi = p \odot S_k O``:

.. math::

    \Psi = F_c Z \psi,\quad
    \psi' = Z^T F_c^{-1}\!\left(m_k \frac{\Psi}{|\Psi|}\right),\quad
    S_k O \leftarrow S_k O + \alpha \frac{\bar p}{\max |p|^2} (\psi' - \psi)

with ``m_k = sqrt(y_k)`` the measured far-field magnitudes.  Probe retrieval (the paper's
probe update) is not implemented: the probe is taken as known.
"""

from __future__ import annotations

import torch

from ..noise import check_finite
from ._common import as_complex
from .projections import PhaseRetrievalResult, check_iterations
from .ptychography import FarFieldPtychography

__all__ = ["epie"]


def epie(
    op: FarFieldPtychography,
    y: torch.Tensor,
    n_iter: int = 50,
    *,
    alpha: float = 1.0,
    x0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PhaseRetrievalResult:
    """Run ePIE (object only).

    Parameters
    ----------
    op : FarFieldPtychography
    y : torch.Tensor
        ``(batch, K, M, N)`` data in ``op``'s units.
    n_iter : int
        Sweeps over all scan positions.
    alpha : float
        Object step in (0, 2).
    x0 : torch.Tensor, optional
        ``(batch, 1, H, W)`` start; default a unit transmission (free space).
    generator : torch.Generator, optional
        Drives the random position order (any device).

    Returns
    -------
    PhaseRetrievalResult
        ``x = z`` the complex object ``(batch, 1, H, W)``; ``errors[k]`` the relative
        far-field magnitude error ``sum_k || |Psi_k| - m_k || / ||m||`` of sweep ``k``
        (accumulated during the sweep, as in the paper).
    """
    if not isinstance(op, FarFieldPtychography):
        raise ValueError(f"op: expected a FarFieldPtychography, got {type(op).__name__}")
    check_iterations(n_iter)
    if not 0 < alpha < 2:
        raise ValueError(f"alpha: expected a value in (0, 2), got {alpha!r}")
    check_finite("y", y)
    if y.ndim != 4 or tuple(y.shape[1:]) != tuple(op.out_shape):
        raise ValueError(f"y: expected shape (batch, *{tuple(op.out_shape)}), got {tuple(y.shape)}")
    lin = op.linear
    mag = op.magnitudes(y)
    cdt = as_complex(mag[..., :0]).dtype
    b = y.shape[0]
    if x0 is None:
        obj = torch.ones((b, *op.in_shape), dtype=cdt, device=y.device)
    else:
        check_finite("x0", x0)
        obj = as_complex(x0).to(cdt).expand(b, *op.in_shape).clone()
    flat = obj.reshape(b, -1)
    probe = lin.probe.to(device=y.device, dtype=cdt)
    weight = alpha * probe.conj() / (probe.abs() ** 2).max()
    index = lin.index.to(y.device)
    mnorm = mag.reshape(b, -1).norm(dim=1).clamp(min=1e-300)
    errors = []
    for _ in range(n_iter):
        order = torch.randperm(
            lin.n_positions, generator=generator,
            device=generator.device if generator is not None else "cpu",
        ).tolist()
        err = torch.zeros(b, dtype=mag.dtype, device=y.device)
        for k in order:
            idx = index[k]
            window = flat[:, idx]
            psi = probe * window
            far = lin.propagate(psi)
            a = far.abs()
            err = err + ((a - mag[:, k]) ** 2).reshape(b, -1).sum(1)
            phase = torch.where(a > 0, far / torch.where(a > 0, a, 1.0), torch.ones_like(far))
            psi_new = lin.back_propagate(mag[:, k] * phase)
            flat[:, idx] = window + weight * (psi_new - psi)
        errors.append(err.sqrt() / mnorm)
    obj = flat.reshape(b, *op.in_shape)
    return PhaseRetrievalResult(
        x=obj, z=obj, errors=torch.stack(errors),
        info={"algorithm": "epie", "n_iter": n_iter, "alpha": alpha},
    )
