r"""Closure phases and log closure amplitudes: data products immune to station gains.

For stations ``a < b < c`` observed at one time, the closure phase is

.. math:: \psi_{abc} = \arg(V_{ab} V_{bc} V_{ca}) = \arg(V_{ab} V_{bc} \overline{V_{ac}})

and for four stations the log closure amplitude is

.. math:: \ln A_{abcd} = \ln|V_{ab}| + \ln|V_{cd}| - \ln|V_{ac}| - \ln|V_{bd}|.

Station gains ``V'_ij = g_i conj(g_j) V_ij`` cancel in both.  At each timestamp with
``N`` stations and all baselines present there are ``(N-1)(N-2)/2`` independent closure
phases and ``N(N-3)/2`` independent log closure amplitudes (Twiss, Carter & Little 1960;
Blackburn et al. 2020, ApJ 894, 31).  A minimal independent set is chosen greedily: the
candidates sorted by their thermal noise ``sum sigma_b^2`` are added when they raise the
rank of the set (closures are linear in baseline phases / log amplitudes, and linear
independence is a matroid, so the greedy choice is the least-noisy basis in this order).

Sigmas are propagated to first order (Chael et al. 2018, ApJ 857, 23):
``sigma = sqrt(sum_b (sigma_b / |V_b|)^2)`` in radians or log units.  ``ln|V|`` of a noisy
visibility is unbiased to second order in ``sigma/|V|`` (``E[ln|V + n|] = ln|V| +
O(sigma^4/|V|^4)``), so log closure amplitudes are not debiased by default; with
``debias=True`` the amplitudes are replaced by ``sqrt(max(|V|^2 - sigma^2, 0))`` first
(the amplitude debiasing of visibility-amplitude data, :func:`debiased_amplitudes`).

Likelihood statistics (as the EHT imaging papers write them):

.. math::
    \chi^2_{cp} = \frac{2}{N}\sum \frac{1 - \cos(\psi - \hat\psi)}{\sigma^2},\qquad
    \chi^2_{lca} = \frac{1}{N}\sum \left(\frac{\ln A - \ln\hat A}{\sigma}\right)^2.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..base import Operator
from ..noise import check_finite
from .observation import Observation
from .visibilities import Visibilities

__all__ = [
    "closure_triangles",
    "closure_quadrangles",
    "closure_phases_of",
    "log_closure_amplitudes_of",
    "debiased_amplitudes",
    "ClosurePhases",
    "LogClosureAmplitudes",
    "ClosurePhaseNoise",
    "closure_phase_chi2",
    "log_closure_amplitude_chi2",
]


def _greedy_basis(candidates: list[tuple[float, list[int], list[float]]], n_base: int) -> list[int]:
    """Indices of a maximal independent subset of ``candidates`` in the given order."""
    basis: list[np.ndarray] = []
    chosen: list[int] = []
    for k, (_, cols, signs) in enumerate(candidates):
        vec = np.zeros(n_base)
        vec[cols] = signs
        r = vec.copy()
        for q in basis:
            r -= (q @ r) * q
        norm = np.linalg.norm(r)
        if norm > 1e-8:
            basis.append(r / norm)
            chosen.append(k)
    return chosen


def _groups(obs: Observation):
    """Per timestamp: (indices of visibilities, {(i, j): local baseline number})."""
    t1, t2 = obs.t1.tolist(), obs.t2.tolist()
    for idx in obs.time_groups():
        idx_list = idx.tolist()
        pairs = {}
        for local, k in enumerate(idx_list):
            pairs.setdefault((t1[k], t2[k]), local)
        yield idx_list, pairs


def closure_triangles(obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
    """A minimal independent set of closure triangles per timestamp.

    Returns
    -------
    index : torch.Tensor
        ``(K, 3)`` int64 visibility indices of ``V_ab, V_bc, V_ac``.
    sign : torch.Tensor
        ``(K, 3)`` float64 ``(+1, +1, -1)``: the closure phase is ``sum sign * arg V``.
    """
    sig2 = (obs.sigma**2).tolist()
    rows = []
    for idx, pairs in _groups(obs):
        stations = sorted({s for p in pairs for s in p})
        cands = []
        for a, b, c in itertools.combinations(stations, 3):
            if (a, b) in pairs and (b, c) in pairs and (a, c) in pairs:
                cols = [pairs[(a, b)], pairs[(b, c)], pairs[(a, c)]]
                cost = sum(sig2[idx[q]] for q in cols)
                cands.append((cost, cols, [1.0, 1.0, -1.0]))
        cands.sort(key=lambda c: c[0])
        for k in _greedy_basis(cands, len(idx)):
            rows.append([idx[q] for q in cands[k][1]])
    index = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
    sign = torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64).expand(index.shape[0], 3).clone()
    return index, sign


def closure_quadrangles(obs: Observation) -> torch.Tensor:
    """A minimal independent set of closure quadrangles per timestamp.

    Returns
    -------
    torch.Tensor
        ``(K, 4)`` int64 visibility indices ``(n1, n2, d1, d2)``: the log closure amplitude
        is ``ln|V_n1| + ln|V_n2| - ln|V_d1| - ln|V_d2|``.
    """
    sig2 = (obs.sigma**2).tolist()
    rows = []
    for idx, pairs in _groups(obs):
        stations = sorted({s for p in pairs for s in p})
        cands = []
        for a, b, c, d in itertools.combinations(stations, 4):
            pairings = [((a, b), (c, d)), ((a, c), (b, d)), ((a, d), (b, c))]
            if not all(p in pairs for pp in pairings for p in pp):
                continue
            for num, den in itertools.combinations(pairings, 2):
                cols = [pairs[num[0]], pairs[num[1]], pairs[den[0]], pairs[den[1]]]
                cost = sum(sig2[idx[q]] for q in cols)
                cands.append((cost, cols, [1.0, 1.0, -1.0, -1.0]))
        cands.sort(key=lambda c: c[0])
        for k in _greedy_basis(cands, len(idx)):
            rows.append([idx[q] for q in cands[k][1]])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 4)


def closure_phases_of(vis: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Closure phases (radians, in (-pi, pi]) of visibilities ``(B, M)`` -> ``(B, K)``."""
    index = index.to(vis.device)
    bis = vis[:, index[:, 0]] * vis[:, index[:, 1]] * vis[:, index[:, 2]].conj()
    return torch.angle(bis)


def log_closure_amplitudes_of(amp: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Log closure amplitudes of amplitudes ``(B, M)`` (real, positive) -> ``(B, K)``."""
    index = index.to(amp.device)
    la = torch.log(amp)
    return la[:, index[:, 0]] + la[:, index[:, 1]] - la[:, index[:, 2]] - la[:, index[:, 3]]


def debiased_amplitudes(vis: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Amplitudes with the Rice bias removed: ``sqrt(max(|V|^2 - sigma^2, 0))``."""
    return torch.sqrt(torch.clamp(vis.abs() ** 2 - sigma**2, min=0.0))


def _propagated_sigma(obs: Observation, index: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
    rel = obs.sigma / amp
    if index.numel() and not bool(torch.isfinite(rel[index]).all()):
        raise ValueError(
            "observation: a visibility used in a closure has zero amplitude; closure sigmas "
            "need data (simulate visibilities first, e.g. obs.with_data(...))"
        )
    return torch.sqrt((rel[index] ** 2).sum(1))


class _ClosureOperator(Operator):
    def __init__(self, observation: Observation, image_size: int, fov_uas: float, pulse: str):
        if not isinstance(observation, Observation):
            raise ValueError("observation: expected an Observation")
        check_finite("observation.vis", observation.vis)
        check_finite("observation.sigma", observation.sigma)
        self.visibilities = Visibilities(observation, image_size, fov_uas, pulse)
        self.in_shape = self.visibilities.in_shape


class ClosurePhases(_ClosureOperator):
    """Image -> closure phases (radians) on a minimal independent set of triangles.

    Forward model ``psi(x) = arg(V_ab V_bc conj(V_ac))`` with ``V = Visibilities(x)``.

    Parameters
    ----------
    observation : Observation
        Sampling and data; closures are formed per timestamp (scan-average first for
        per-scan closures).
    image_size, fov_uas, pulse
        As for :class:`Visibilities`.

    Attributes
    ----------
    data : torch.Tensor
        ``(K,)`` float64 measured closure phases, radians.
    sigma : torch.Tensor
        ``(K,)`` float64 propagated thermal sigmas, radians.
    index, times : torch.Tensor
        ``(K, 3)`` visibility indices; ``(K,)`` hours UTC.
    """

    def __init__(
        self,
        observation: Observation,
        image_size: int = 64,
        fov_uas: float = 160.0,
        pulse: str = "box",
    ):
        super().__init__(observation, image_size, fov_uas, pulse)
        self.index, _ = closure_triangles(observation)
        self.times = observation.time[self.index[:, 0]] if self.index.numel() else torch.zeros(0)
        self.data = closure_phases_of(observation.vis[None], self.index)[0]
        self.sigma = _propagated_sigma(observation, self.index, observation.vis.abs())
        self.out_shape = (self.index.shape[0],)

    def from_visibilities(self, vis: torch.Tensor) -> torch.Tensor:
        """Closure phases of visibilities ``(B, M)``."""
        return closure_phases_of(vis, self.index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` image in Jy/pixel -> ``(B, K)`` closure phases in radians."""
        return self.from_visibilities(self.visibilities(x))

    def noise(self) -> ClosurePhaseNoise:
        """The matching noise model with :attr:`sigma`."""
        return ClosurePhaseNoise(self.sigma)


class LogClosureAmplitudes(_ClosureOperator):
    """Image -> log closure amplitudes on a minimal independent set of quadrangles.

    Forward model ``ln|V_n1| + ln|V_n2| - ln|V_d1| - ln|V_d2|`` with ``V = Visibilities(x)``.

    Parameters
    ----------
    observation : Observation
    image_size, fov_uas, pulse
        As for :class:`Visibilities`.
    debias : bool
        Debias the measured amplitudes (``sqrt(|V|^2 - sigma^2)``) before taking logs; off
        by default (the logarithm is already unbiased to second order, see the module
        notes).
    snr_floor : float
        Model amplitudes are clamped below at ``1e-12`` Jy times this factor to keep the
        logarithm finite for images with exact zeros in the Fourier plane.

    Attributes
    ----------
    data, sigma : torch.Tensor
        ``(K,)`` float64 measured log closure amplitudes and their sigmas.
    index, times : torch.Tensor
        ``(K, 4)`` visibility indices; ``(K,)`` hours UTC.
    """

    def __init__(
        self,
        observation: Observation,
        image_size: int = 64,
        fov_uas: float = 160.0,
        pulse: str = "box",
        debias: bool = False,
        snr_floor: float = 1.0,
    ):
        super().__init__(observation, image_size, fov_uas, pulse)
        self.index = closure_quadrangles(observation)
        self.times = observation.time[self.index[:, 0]] if self.index.numel() else torch.zeros(0)
        amp = observation.vis.abs()
        if debias:
            amp = debiased_amplitudes(observation.vis, observation.sigma)
        self.sigma = _propagated_sigma(observation, self.index, amp)
        self.data = log_closure_amplitudes_of(amp[None], self.index)[0]
        self.floor = 1e-12 * snr_floor
        self.out_shape = (self.index.shape[0],)

    def from_visibilities(self, vis: torch.Tensor) -> torch.Tensor:
        """Log closure amplitudes of visibilities ``(B, M)``."""
        return log_closure_amplitudes_of(torch.clamp(vis.abs(), min=self.floor), self.index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, N, N)`` image in Jy/pixel -> ``(B, K)`` log closure amplitudes."""
        return self.from_visibilities(self.visibilities(x))

    def noise(self):
        """The matching noise model: Gaussian with :attr:`sigma`."""
        from ..noise import GaussianNoise

        return GaussianNoise(self.sigma)


def _as_batch(t: torch.Tensor) -> torch.Tensor:
    return t if t.ndim == 2 else t.reshape(1, -1)


def closure_phase_chi2(
    model: torch.Tensor, data: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """Reduced closure-phase chi^2 ``(2/N) sum (1 - cos(data - model)) / sigma^2``.

    Parameters
    ----------
    model : torch.Tensor
        ``(K,)`` or ``(B, K)`` model closure phases, radians.
    data, sigma : torch.Tensor
        ``(K,)`` measured closure phases and sigmas, radians.

    Returns
    -------
    torch.Tensor
        ``(B,)`` (``()`` for a 1-D ``model``).
    """
    m = _as_batch(model)
    d = data.to(m.device, m.dtype)
    s = sigma.to(m.device, m.dtype)
    out = (2.0 / d.shape[-1]) * ((1.0 - torch.cos(d - m)) / s**2).sum(-1)
    return out if model.ndim == 2 else out[0]


def log_closure_amplitude_chi2(
    model: torch.Tensor, data: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """Reduced log-closure-amplitude chi^2 ``(1/N) sum ((data - model) / sigma)^2``.

    Shapes as in :func:`closure_phase_chi2`.
    """
    m = _as_batch(model)
    d = data.to(m.device, m.dtype)
    s = sigma.to(m.device, m.dtype)
    out = (((d - m) / s) ** 2).mean(-1)
    return out if model.ndim == 2 else out[0]


class ClosurePhaseNoise:
    r"""Noise model of closure phases: wrapped Gaussian in the high-SNR limit.

    ``log p = -sum (1 - cos(psi - psi_hat)) / sigma^2 - sum ln sigma - (K/2) ln 2 pi``
    (the von Mises form of a Gaussian of width ``sigma``; equal to it for small residuals),
    ``chi2 = 2 sum (1 - cos d) / sigma^2`` so ``chi2 / n_data`` is
    :func:`closure_phase_chi2`.

    Parameters
    ----------
    sigma : torch.Tensor
        ``(K,)`` positive closure-phase sigmas, radians.
    """

    def __init__(self, sigma: torch.Tensor):
        s = torch.as_tensor(sigma)
        if s.ndim != 1 or not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
            raise ValueError("sigma: expected a 1-D tensor of positive finite sigmas in radians")
        self.sigma = s

    def _s(self, y: torch.Tensor) -> torch.Tensor:
        return self.sigma.to(y.device, y.dtype)

    def sample(
        self, y_clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Closure phases plus Gaussian noise, wrapped to (-pi, pi]."""
        n = torch.randn(
            y_clean.shape, dtype=y_clean.dtype, device=y_clean.device, generator=generator
        )
        return torch.angle(torch.polar(torch.ones_like(y_clean), y_clean + self._s(y_clean) * n))

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """``2 sum (1 - cos(y - y_clean)) / sigma^2`` per batch item."""
        return (
            (2.0 * (1.0 - torch.cos(y - y_clean)) / self._s(y) ** 2)
            .reshape(y_clean.shape[0], -1)
            .sum(1)
        )

    def n_data(self, y: torch.Tensor) -> int:
        """Number of closure phases in one item."""
        return math.prod(y.shape[1:])

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Log density per batch item, constants included."""
        s = self._s(y)
        k = self.n_data(y)
        const = torch.log(s).sum() + 0.5 * k * math.log(2 * math.pi)
        return -0.5 * self.chi2(y, y_clean) - const

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        """Chord distance ``sqrt(sum 2 (1 - cos d))`` per item (wrap-safe)."""
        return torch.sqrt(
            (2.0 * (1.0 - torch.cos(y - y_clean))).reshape(y_clean.shape[0], -1).sum(1)
        )

    def to(self, device) -> ClosurePhaseNoise:
        """Move the sigmas (returns self)."""
        self.sigma = self.sigma.to(device)
        return self

    def __repr__(self) -> str:
        return f"ClosurePhaseNoise({self.sigma.numel()} closure phases)"
