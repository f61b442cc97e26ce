"""Distances between (weighted) sample sets, for checking samplers against exact posteriors."""

from __future__ import annotations

import torch

__all__ = ["wasserstein_1d", "sliced_wasserstein"]


def _normalised(w: torch.Tensor | None, n: int, batch: int, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((batch, n), 1.0 / n, dtype=torch.float64, device=like.device)
    w = torch.as_tensor(w, dtype=torch.float64, device=like.device).reshape(-1)
    if w.numel() != n or bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError(f"weights: expected {n} finite non-negative weights")
    if float(w.sum()) <= 0:
        raise ValueError("weights: expected a positive sum")
    return (w / w.sum()).expand(batch, n)


def wasserstein_1d(
    u: torch.Tensor,
    v: torch.Tensor,
    u_weights: torch.Tensor | None = None,
    v_weights: torch.Tensor | None = None,
    p: float = 2.0,
) -> torch.Tensor:
    r"""p-Wasserstein distance between weighted empirical measures on the line.

    .. math:: W_p^p = \int_0^1 |F_u^{-1}(t) - F_v^{-1}(t)|^p\,dt

    computed exactly on the merged breakpoints of the two quantile functions.

    Parameters
    ----------
    u, v : torch.Tensor
        ``(P, n)`` and ``(P, m)`` samples for ``P`` independent problems (or 1-D tensors).
    u_weights, v_weights : torch.Tensor, optional
        ``(n,)`` / ``(m,)`` non-negative weights shared by the ``P`` rows (uniform if None).
    p : float
        Order, ``p >= 1``.

    Returns
    -------
    torch.Tensor
        ``(P,)`` float64 distances (a 0-d tensor for 1-D inputs).
    """
    if p < 1:
        raise ValueError(f"p: expected p >= 1, got {p!r}")
    squeeze = u.ndim == 1
    u = u.reshape(1, -1) if u.ndim == 1 else u
    v = v.reshape(1, -1) if v.ndim == 1 else v
    if u.shape[0] != v.shape[0]:
        raise ValueError("u, v: expected the same number of rows")
    u, v = u.to(torch.float64), v.to(torch.float64)
    rows = u.shape[0]
    wu = _normalised(u_weights, u.shape[1], rows, u)
    wv = _normalised(v_weights, v.shape[1], rows, v)
    us, iu = torch.sort(u, dim=1)
    vs, iv = torch.sort(v, dim=1)
    cu = torch.cumsum(torch.gather(wu, 1, iu), dim=1)
    cv = torch.cumsum(torch.gather(wv, 1, iv), dim=1)
    cu[:, -1] = 1.0
    cv[:, -1] = 1.0
    t, _ = torch.sort(torch.cat([cu, cv], dim=1), dim=1)  # merged breakpoints
    dt = torch.diff(t, dim=1, prepend=torch.zeros_like(t[:, :1]))
    mid = (t - 0.5 * dt).clamp(0.0, 1.0)
    ku = torch.searchsorted(cu, mid).clamp(max=u.shape[1] - 1)
    kv = torch.searchsorted(cv, mid).clamp(max=v.shape[1] - 1)
    diff = (torch.gather(us, 1, ku) - torch.gather(vs, 1, kv)).abs() ** p
    out = (diff * dt).sum(1) ** (1.0 / p)
    return out[0] if squeeze else out


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    x_weights: torch.Tensor | None = None,
    y_weights: torch.Tensor | None = None,
    n_projections: int = 256,
    p: float = 2.0,
    generator: torch.Generator | None = None,
    directions: torch.Tensor | None = None,
) -> float:
    r"""Sliced p-Wasserstein distance between two (weighted) sample sets.

    .. math:: SW_p(\mu, \nu) = \Big(\mathbb E_{\theta \sim U(S^{d-1})}
              W_p^p(\theta_\# \mu, \theta_\# \nu)\Big)^{1/p}

    estimated with ``n_projections`` random directions (Bonneel et al. 2015).  Use the same
    ``generator`` seed (or ``directions``) to compare several sample sets on equal terms.

    Parameters
    ----------
    x, y : torch.Tensor
        ``(n, *shape)`` and ``(m, *shape)`` samples (flattened per item).
    x_weights, y_weights : torch.Tensor, optional
        Importance weights ``(n,)`` / ``(m,)`` (e.g. SMC particles); uniform if None.
    n_projections : int
        Number of random directions.
    p : float
        Order, ``p >= 1``.
    generator : torch.Generator, optional
        Random source of the directions.
    directions : torch.Tensor, optional
        ``(P, d)`` directions to use instead of random ones (normalised here).

    Returns
    -------
    float
        The distance, in the units of the samples.
    """
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    yf = y.reshape(y.shape[0], -1).to(torch.float64).to(xf.device)
    if xf.shape[1] != yf.shape[1]:
        raise ValueError(
            f"x, y: expected samples of equal size, got {xf.shape[1]} and {yf.shape[1]}"
        )
    d = xf.shape[1]
    if directions is None:
        if not isinstance(n_projections, int) or n_projections < 1:
            raise ValueError(f"n_projections: expected a positive integer, got {n_projections!r}")
        dev = generator.device if generator is not None else xf.device
        directions = torch.randn((n_projections, d), dtype=torch.float64, device=dev,
                                 generator=generator)
    directions = directions.to(torch.float64).to(xf.device)
    if directions.ndim != 2 or directions.shape[1] != d:
        raise ValueError(f"directions: expected shape (P, {d})")
    directions = directions / directions.norm(dim=1, keepdim=True)
    w = wasserstein_1d((xf @ directions.T).T, (yf @ directions.T).T, x_weights, y_weights, p=p)
    return float((w**p).mean() ** (1.0 / p))
