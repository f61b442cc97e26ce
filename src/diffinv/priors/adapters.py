r"""Adapters from other diffusion parameterisations to the prior contract ``D(x, sigma)``.

Variance-preserving (VP / DDPM) models are trained on
``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` for a discrete schedule ``abar_t``
(Ho et al. 2020).  Dividing by ``sqrt(abar_t)`` gives the variance-exploding form used here,

.. math:: x = x_t / \sqrt{\bar\alpha_t} = x_0 + \sigma_t \epsilon,\qquad
          \sigma_t = \sqrt{(1 - \bar\alpha_t) / \bar\alpha_t},

so a VE input ``(x, sigma)`` is fed to the VP network as ``x_t = x / sqrt(1 + sigma^2)``
(since ``abar = 1 / (1 + sigma^2)``) at the timestep whose ``sigma_t`` matches ``sigma``:
either interpolated linearly in ``log sigma_t`` (a fractional timestep, which sinusoidal
time embeddings accept) or the nearest one.  Then

* epsilon prediction (guided-diffusion, DPS/DAPS checkpoints): ``D = x - sigma * eps_hat``;
* v prediction (Salimans & Ho 2022, ``v = sqrt(abar) eps - sqrt(1 - abar) x0``):
  ``D = sqrt(abar) x_t - sqrt(1 - abar) v_hat``;
* EDM-format networks are either already ``D(x, sigma)`` or a raw ``F`` that
  :class:`~diffinv.priors.edm.EDMDenoiser` preconditions;
* deepinv denoisers (``DRUNet``, ``DiffUNet``, ``NCSNpp``) take ``(x, sigma)`` with images in
  [0, 1] and the same additive-noise convention; :class:`DeepinvDenoiserPrior` maps a data
  range onto [0, 1].

Networks trained on images in [-1, 1] (guided-diffusion) are given ``data_range=(-1, 1)``
(the default): for other user frames the adapter rescales affinely as
``D(x, s) = lo + w D_net((x - lo) / w, s / w)`` with ``w`` the width ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .base import sigma_per_item
from .edm import EDMDenoiser, param_dtype

__all__ = [
    "linear_alpha_bar",
    "cosine_alpha_bar",
    "VPDenoiser",
    "EpsilonPredictionPrior",
    "VPredictionPrior",
    "edm_prior",
    "DeepinvDenoiserPrior",
    "vp_prior_from_checkpoint",
    "edm_prior_from_checkpoint",
]


def linear_alpha_bar(steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
                     ) -> torch.Tensor:
    """``abar_t = prod_{s<=t} (1 - beta_s)`` for DDPM's linear betas (float64, (steps,))."""
    if steps < 2:
        raise ValueError(f"steps: expected at least 2 timesteps, got {steps}")
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def cosine_alpha_bar(steps: int = 1000, s: float = 0.008, max_beta: float = 0.999
                     ) -> torch.Tensor:
    """Improved-DDPM cosine schedule (Nichol & Dhariwal 2021), float64 ``(steps,)``."""
    if steps < 2:
        raise ValueError(f"steps: expected at least 2 timesteps, got {steps}")

    def f(t):
        return math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2

    betas = torch.tensor([min(1 - f(i + 1) / f(i), max_beta) for i in range(steps)],
                         dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


class VPDenoiser(nn.Module):
    """Base class of the VP adapters: schedule, sigma <-> timestep map, data frame.

    Parameters
    ----------
    net : callable
        ``net(x_t, t) -> output`` with ``x_t`` (batch, C, ...) and ``t`` (batch,) float
        timesteps (indices into ``alpha_bar``, times ``timestep_scale``).  If the output has
        twice the input's channels (learned variance, guided-diffusion), the first half is
        used.
    alpha_bar : torch.Tensor
        ``(T,)`` decreasing cumulative products ``abar_t`` in (0, 1].
    interpolate : bool
        Fractional timesteps interpolated in ``log sigma`` (default) or the nearest one.
    timestep_scale : float
        Multiplies the timestep index before calling ``net`` (e.g. ``1000 / T``).
    data_range : tuple of float
        Range the network's training images spanned, in the user's frame; default
        ``(-1, 1)`` (guided-diffusion).  The network sees it mapped onto [-1, 1].
    """

    def __init__(self, net: Callable, alpha_bar: torch.Tensor, interpolate: bool = True,
                 timestep_scale: float = 1.0, data_range: tuple[float, float] = (-1.0, 1.0)):
        super().__init__()
        ab = torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1)
        if ab.numel() < 2 or not bool(((ab > 0) & (ab <= 1)).all()):
            raise ValueError("alpha_bar: expected at least 2 values in (0, 1]")
        if not bool((ab[1:] < ab[:-1]).all()):
            raise ValueError("alpha_bar: expected strictly decreasing values")
        lo, hi = (float(v) for v in data_range)
        if not hi > lo:
            raise ValueError(f"data_range: expected lo < hi, got {data_range}")
        self.net = net
        self.interpolate = bool(interpolate)
        self.timestep_scale = float(timestep_scale)
        self.register_buffer("alpha_bar", ab, persistent=False)
        self.register_buffer("log_sigmas", 0.5 * torch.log((1 - ab) / ab), persistent=False)
        self.offset = 0.5 * (lo + hi)
        self.scale = 0.5 * (hi - lo)
        self.sigma_min = float(torch.exp(self.log_sigmas[0])) * self.scale
        self.sigma_max = float(torch.exp(self.log_sigmas[-1])) * self.scale

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """Timestep (float index into ``alpha_bar``) whose ``sigma_t`` matches ``sigma``.

        ``sigma`` is in the network's normalised frame; values outside the schedule are
        clamped to its ends.
        """
        ls = self.log_sigmas.to(sigma.device)
        log_s = torch.log(sigma.double().clamp(min=1e-30)).clamp(float(ls[0]), float(ls[-1]))
        hi = torch.searchsorted(ls, log_s).clamp(1, ls.numel() - 1)
        lo = hi - 1
        frac = (log_s - ls[lo]) / (ls[hi] - ls[lo])
        t = lo.double() + frac
        if not self.interpolate:
            t = torch.round(t)
        return t

    def _net(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # the network runs in its parameters' dtype (a float32 checkpoint in a float64 run)
        net_dtype = param_dtype(self.net, x_t.dtype)
        out = self.net(x_t.to(net_dtype), (t * self.timestep_scale).to(net_dtype))
        out = out.to(x_t.dtype)
        if out.shape[1] == 2 * x_t.shape[1]:
            out = out[:, : x_t.shape[1]]
        if out.shape != x_t.shape:
            raise ValueError(f"net: output shape {tuple(out.shape)} does not match the input "
                             f"{tuple(x_t.shape)}")
        return out

    def denoise_normalised(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``D`` in the network's frame, ``u`` (batch, ...), ``s`` (batch,) > 0."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = sigma_per_item(sigma, x) / self.scale
        shape = (-1,) + (1,) * (x.ndim - 1)
        u = (x - self.offset) / self.scale
        safe = torch.where(s > 0, s, torch.ones_like(s))
        d = self.denoise_normalised(u, safe)
        d = torch.where(s.reshape(shape) > 0, d, u)
        return self.offset + self.scale * d


class EpsilonPredictionPrior(VPDenoiser):
    """A VP epsilon-prediction network (DDPM / guided-diffusion) as ``D(x, sigma)``.

    ``D(x, sigma) = x - sigma * eps_hat(x / sqrt(1 + sigma^2), t(sigma))``; see
    :class:`VPDenoiser` for the parameters.
    """

    def denoise_normalised(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (u.ndim - 1)
        sv = s.reshape(shape)
        x_t = u / torch.sqrt(1 + sv**2)
        eps = self._net(x_t, self.timestep(s))
        return u - sv * eps


class VPredictionPrior(VPDenoiser):
    """A VP v-prediction network as ``D(x, sigma)``.

    With ``abar = 1 / (1 + sigma^2)`` and ``x_t = sqrt(abar) x``:
    ``D = sqrt(abar) x_t - sqrt(1 - abar) v_hat(x_t, t(sigma))``.
    """

    def denoise_normalised(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (u.ndim - 1)
        sv = s.reshape(shape)
        sqrt_ab = 1.0 / torch.sqrt(1 + sv**2)
        sqrt_1m = sv * sqrt_ab
        x_t = sqrt_ab * u
        v = self._net(x_t, self.timestep(s))
        return sqrt_ab * x_t - sqrt_1m * v


class _CallableDenoiser(nn.Module):
    def __init__(self, net: Callable, sigma_min: float, sigma_max: float):
        super().__init__()
        self.net = net
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        return self.net(x, sigma_per_item(sigma, x))


def edm_prior(net: Callable, sigma_data: float | None = None, offset: float = 0.0,
              scale: float = 1.0, sigma_min: float = 0.002, sigma_max: float = 80.0
              ) -> nn.Module:
    """Wrap an EDM-format network as a prior.

    Parameters
    ----------
    net : callable
        If ``sigma_data`` is ``None``: an already preconditioned ``D(x, sigma)`` (as EDM's
        ``EDMPrecond`` modules), called with ``sigma`` of shape (batch,).  Otherwise the raw
        ``F(c_in x, c_noise)``, preconditioned here (:class:`EDMDenoiser`).
    """
    if sigma_data is None:
        return _CallableDenoiser(net, sigma_min, sigma_max)
    return EDMDenoiser(net, sigma_data, offset, scale, sigma_min, sigma_max)


class DeepinvDenoiserPrior(nn.Module):
    """A deepinv denoiser (``DRUNet``, ``DiffUNet``, ``NCSNpp``, ...) as ``D(x, sigma)``.

    deepinv denoisers are called ``model(y, sigma)`` for ``y = x + sigma * n`` with images in
    [0, 1]; ``data_range`` maps the user's frame onto it:
    ``D(x, s) = lo + w * model((x - lo) / w, s / w)`` with ``w = hi - lo``.
    Load the weights yourself (e.g. ``DRUNet(pretrained=local_path)``); nothing is
    downloaded here.
    """

    def __init__(self, model: Callable, data_range: tuple[float, float] = (0.0, 1.0),
                 sigma_min: float = 0.0, sigma_max: float = 1.0):
        super().__init__()
        lo, hi = (float(v) for v in data_range)
        if not hi > lo:
            raise ValueError(f"data_range: expected lo < hi, got {data_range}")
        self.model = model
        self.lo, self.width = lo, hi - lo
        self.sigma_min = float(sigma_min) * self.width
        self.sigma_max = float(sigma_max) * self.width

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        s = sigma_per_item(sigma, x) / self.width
        u = (x - self.lo) / self.width
        return self.lo + self.width * self.model(u, s)


def _load_state_dict(path) -> dict:
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint at {str(path)!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("ema", "model_ema", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"path: {str(path)!r} does not hold a state_dict")
    return state


def vp_prior_from_checkpoint(
    path,
    network: nn.Module,
    prediction: str = "epsilon",
    alpha_bar: torch.Tensor | None = None,
    **adapter_options,
) -> VPDenoiser:
    """Load a VP (DDPM-style) network's weights from a local file and adapt it.

    Parameters
    ----------
    path : path
        ``torch.save``-d ``state_dict`` (or a dict holding one under ``ema``,
        ``model_ema``, ``state_dict`` or ``model``), loaded with ``weights_only=True``.
    network : nn.Module
        The architecture, already constructed (e.g. deepinv's ``DiffUNet(pretrained=None)``
        wrapped as ``net(x_t, t)`` for guided-diffusion weights); its weights are replaced.
    prediction : {"epsilon", "v"}
    alpha_bar : torch.Tensor, optional
        The training schedule; default DDPM's linear schedule with 1000 steps.
    **adapter_options
        ``interpolate``, ``timestep_scale``, ``data_range`` (see :class:`VPDenoiser`).
    """
    cls = {"epsilon": EpsilonPredictionPrior, "v": VPredictionPrior}.get(prediction)
    if cls is None:
        raise ValueError(f"prediction: expected 'epsilon' or 'v', got {prediction!r}")
    network.load_state_dict(_load_state_dict(path))
    network.eval()
    ab = linear_alpha_bar(1000) if alpha_bar is None else alpha_bar
    return cls(network, ab, **adapter_options)


def edm_prior_from_checkpoint(path, network: nn.Module, sigma_data: float | None = None,
                              **options) -> nn.Module:
    """Load an EDM-format network's weights from a local file; see :func:`edm_prior`."""
    network.load_state_dict(_load_state_dict(path))
    network.eval()
    return edm_prior(network, sigma_data, **options)
