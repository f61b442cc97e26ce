"""The prior contract: a denoiser ``D(x, sigma) = E[x0 | x0 + sigma * eps = x]``.

Any callable ``prior(x, sigma)`` is a prior, in the variance-exploding (EDM, Karras et al.
2022) convention: ``x`` has shape ``(batch, *event_shape)`` and ``sigma`` is a tensor of shape
``(batch,)`` (or a scalar, broadcast over the batch).  Optional attributes ``sigma_min`` and
``sigma_max`` tell samplers the noise range the denoiser was built for; ``event_shape`` tells
them the shape of one image.  A size-agnostic prior (a fully convolutional network) also has
``channels`` (int) and ``min_size``/``max_size`` (int or ``None``: no limit) attributes: it
accepts any ``(channels, H, W)`` image with ``min_size <= H, W <= max_size``, and its
``event_shape`` is only the default (training) shape.  Without ``channels`` the prior is
fixed-size and ``event_shape`` must match exactly (:func:`shape_mismatch`).  By Tweedie's
formula the score of the noised prior is ``(D(x, sigma) - x) / sigma**2``.  An optional
method ``denoiser_jacobian(x, sigma) -> (D(x, sigma), dD/dx)`` (shape ``(batch, n, n)``,
``n`` values per image) lets samplers that need ``Cov(x0 | x) = sigma**2 dD/dx`` skip one
backward pass per unknown (the analytic priors have it; see
:mod:`diffinv.solvers.smc.tweedie_kernel`).

Other parameterisations (VP/DDPM epsilon prediction, v prediction) are adapted at the edge.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Denoiser", "sigma_per_item", "score_from_denoiser", "shape_mismatch"]


@runtime_checkable
class Denoiser(Protocol):
    """``D(x, sigma) = E[x0 | x0 + sigma * eps = x]``; x (batch, ...), sigma (batch,)."""

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


def sigma_per_item(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Return ``sigma`` as a real tensor of shape ``(batch,)`` on ``x``'s device and dtype.

    Raises ``ValueError`` if ``sigma`` has the wrong size or negative values.
    """
    real_dtype = x.real.dtype if x.is_complex() else x.dtype
    s = torch.as_tensor(sigma, dtype=real_dtype, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    s = s.reshape(-1)
    if s.shape[0] == 1 and x.shape[0] != 1:
        s = s.expand(x.shape[0])
    if s.shape[0] != x.shape[0]:
        raise ValueError(
            f"sigma: expected a scalar or {x.shape[0]} values (one per batch item), "
            f"got {s.shape[0]}"
        )
    if bool((s < 0).any()):
        raise ValueError("sigma: expected non-negative noise levels")
    return s


def score_from_denoiser(
    prior: Denoiser, x: torch.Tensor, sigma: torch.Tensor | float
) -> torch.Tensor:
    """Score ``grad log p_sigma(x) = (D(x, sigma) - x) / sigma^2`` by Tweedie's formula."""
    s = sigma_per_item(sigma, x)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (prior(x, s) - x) / s.reshape(shape) ** 2


def shape_mismatch(prior: object, image_shape: tuple[int, ...]) -> str | None:
    """Why ``prior`` cannot denoise images of shape ``image_shape``, or ``None`` if it can.

    Size-agnostic priors (with a ``channels`` attribute) accept ``(channels, H, W)`` for
    ``min_size <= H, W <= max_size``; other priors with an ``event_shape`` accept exactly
    that shape; priors with neither accept anything.
    """
    shape = tuple(int(s) for s in image_shape)
    channels = getattr(prior, "channels", None)
    if channels is not None:
        lo = getattr(prior, "min_size", None)
        hi = getattr(prior, "max_size", None)
        limits = f"sizes {lo or 1} to {hi if hi is not None else 'any'}"
        if len(shape) != 3 or shape[0] != int(channels):
            return (f"it takes images (channels={int(channels)}, H, W) with {limits}; the "
                    f"problem's image shape is {shape}")
        small = lo is not None and min(shape[1:]) < int(lo)
        large = hi is not None and max(shape[1:]) > int(hi)
        if small or large:
            return (f"it takes image {limits} pixels per side; the problem's image shape is "
                    f"{shape}")
        return None
    event = getattr(prior, "event_shape", None)
    if event is not None and tuple(event) != shape:
        return f"its event_shape {tuple(event)} does not match the problem's image shape {shape}"
    return None
