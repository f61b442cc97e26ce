r"""MCMC rejuvenation moves for SMC: MALA, HMC and pCN on a tempered, twisted diffusion target.

After resampling, the particles at noise level ``sigma`` are moved by Metropolis-Hastings
kernels that leave the current SMC target invariant (the resample-move algorithm of Gilks &
Berzuini 2001; Chopin 2002), restoring the diversity that resampling removes.  The target at
level ``sigma`` with exponent ``e`` is

.. math:: \pi(x) \propto p_\sigma(x)\, \exp\big(e\, \ell(D(x, \sigma))\big),

``p_sigma`` the prior convolved with ``N(0, sigma^2 I)``, ``D`` the denoiser and ``ell`` the
log-likelihood (``e`` combines the tempering exponent and the twist's variance inflation,
:mod:`diffinv.solvers.smc.tds`).  One evaluation (:func:`evaluate`) is one denoiser call with a
backward pass; it gives ``D``, ``ell``, ``grad_x ell(D(x))`` and the prior score
``grad log p_sigma(x) = (D(x, sigma) - x) / sigma^2`` (Tweedie).

The prior's density is not available from a denoiser, only its score, so the Metropolis
ratio uses the line integral of the score along the segment from ``x`` to ``x'`` by the
trapezoidal rule (Sjoberg, Jin & Lindsten 2023, "MCMC-correction of score-based diffusion
models for model composition"):

.. math:: \log p_\sigma(x') - \log p_\sigma(x) \approx
          \tfrac12 \big(s(x) + s(x')\big) \cdot (x' - x),

exact when the score is affine (a Gaussian prior: the moves are then exactly invariant),
with an error of third order in the step otherwise.  Priors with an exact
``log_prob_at(x, sigma) -> (N,)`` method use it instead.

Kernels (per particle; ``h`` and ``beta`` adapted between sweeps towards a target acceptance
by a Robbins-Monro update of their logarithm, using the population's acceptance rate, which
keeps every sweep's kernel fixed given the particles):

* ``mala`` (Roberts & Tweedie 1996), preconditioned:
  ``x' = x + eps c * g(x) + sqrt(2 eps c) xi`` with ``g = grad log pi`` and ``c`` the
  particles' per-pixel variance at the start of the rejuvenation (a diagonal mass matrix
  fitted to the population, which sets the scale whatever the level and the likelihood, as in
  adaptive SMC samplers); target acceptance 0.574 (Roberts & Rosenthal 1998).
* ``hmc`` (Duane, Kennedy, Pendleton & Roweth 1987; Neal 2011, "MCMC using Hamiltonian
  dynamics"): ``n_leapfrog`` leapfrog steps of size ``eps`` with the same diagonal
  preconditioner (mass matrix ``diag(c)^{-1}``): momenta ``u ~ N(0, I)``,
  ``u += eps/2 c^{1/2} g``, ``x += eps c^{1/2} u``, ..., and the Metropolis check on
  ``log pi(x_K) - log pi(x_0) - |u_K|^2/2 + |u_0|^2/2``.  One leapfrog step is MALA with
  ``h = eps^2 / 2``; ``K`` steps move about ``K`` times as far for ``K`` evaluations (MALA's
  ``K`` sweeps diffuse about ``sqrt K`` times as far).  Without an exact prior density the
  prior's log-ratio is the trapezoidal line integral of the score along the whole leapfrog
  path (every position's score is evaluated anyway), exact for an affine score and
  antisymmetric under reversal of the path; target acceptance 0.65 (Beskos, Pillai,
  Roberts, Sanz-Serna & Stuart 2013).
* ``pcn`` (Cotter, Roberts, Stuart & White 2013): ``x' = m + sqrt(1 - beta^2) (x - m) +
  beta c^{1/2} xi``, reversible for the reference ``N(m, diag c)`` fitted to the particles
  (per-pixel mean and variance), so the acceptance ratio is ``pi / N(m, c)`` at ``x'`` over
  that at ``x``; target acceptance 0.25.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .particles import denoise

__all__ = ["MOVES", "DEFAULT_ACCEPTANCE", "DEFAULT_LEAPFROG", "TwistState", "Rejuvenation",
           "evaluate"]

MOVES = ("none", "mala", "hmc", "pcn")
DEFAULT_ACCEPTANCE = {"mala": 0.574, "hmc": 0.65, "pcn": 0.25}
DEFAULT_LEAPFROG = 5  # leapfrog steps per HMC transition
ADAPT_GAIN = 2.0  # Robbins-Monro gain on log(step) per sweep: log h += gain (acc - target)
MIN_REFERENCE_VAR = 1e-12  # floor of pCN's per-pixel reference variance (image units^2)


@dataclass
class TwistState:
    """Particles ``x`` ``(N, *shape)`` at one level with their denoised estimates ``x0``,
    float64 log-likelihoods ``ell = log p(y | x0)`` ``(N,)`` and ``grad = grad_x ell`` (shape
    of ``x``)."""

    x: torch.Tensor
    x0: torch.Tensor
    ell: torch.Tensor
    grad: torch.Tensor

    def gather(self, idx: torch.Tensor | None) -> TwistState:
        """Reindex by ancestor indices (identity for ``None``)."""
        if idx is None:
            return self
        return TwistState(self.x[idx], self.x0[idx], self.ell[idx], self.grad[idx])

    def where(self, accept: torch.Tensor, other: TwistState) -> TwistState:
        """``other``'s entries where ``accept`` ``(N,)`` is True, else this state's."""
        shape = (-1,) + (1,) * (self.x.ndim - 1)
        a = accept.reshape(shape)
        return TwistState(torch.where(a, other.x, self.x), torch.where(a, other.x0, self.x0),
                          torch.where(accept, other.ell, self.ell),
                          torch.where(a, other.grad, self.grad))


def evaluate(prior: Callable, log_likelihood: Callable, x: torch.Tensor, sigma: float,
             max_batch: int | None) -> TwistState:
    """Denoise ``x`` at ``sigma`` and differentiate ``log_likelihood(D(x))`` (one call)."""
    x0, ell, grad = denoise(prior, x, sigma, max_batch, log_likelihood)
    return TwistState(x, x0, ell, grad)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).to(torch.float64)


@dataclass
class Rejuvenation:
    """MCMC moves after resampling (module docstring).

    Parameters
    ----------
    kind : {"mala", "hmc", "pcn"}
        The kernel.
    n_moves : int
        Sweeps (Metropolis-Hastings transitions of every particle) per rejuvenation.
    target_acceptance : float
        Acceptance rate the step adaptation aims at, in (0, 1).
    prior, log_likelihood : callable
        Denoiser ``D(x, sigma)`` and ``log p(y | x0) -> (N,)``.
    max_batch : int or None
        Particles per denoiser call.
    generator : torch.Generator
        Random source.
    n_leapfrog : int
        Leapfrog steps per HMC transition (``hmc`` only; each one evaluation).

    Attributes
    ----------
    acceptance : list of float
        Mean acceptance rate of each sweep.
    steps : list of float
        Step parameter of each sweep (MALA's ``eps``, HMC's leapfrog ``eps``, pCN's
        ``beta``).
    evaluations : int
        Denoiser calls (with a backward pass) per particle spent on moves.
    """

    kind: str
    n_moves: int
    target_acceptance: float
    prior: Callable
    log_likelihood: Callable
    max_batch: int | None
    generator: torch.Generator | None
    n_leapfrog: int = DEFAULT_LEAPFROG
    step: float = 0.0
    acceptance: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    evaluations: int = 0

    def __post_init__(self):
        if self.step == 0.0:
            self.step = 0.6 if self.kind == "hmc" else 0.2  # HMC: eps^2 / 2 = MALA's 0.2

    def move(self, st: TwistState, sigma: float, exponent: float) -> TwistState:
        """Apply ``n_moves`` sweeps at level ``sigma`` (> 0) and exponent ``e``; return the
        moved state (a new object; ``st`` is not modified)."""
        xf = _flat(st.x)
        ref = (xf.mean(0), xf.var(0, unbiased=False).clamp(min=MIN_REFERENCE_VAR))
        for _ in range(self.n_moves):
            st = self._sweep(st, sigma, exponent, ref)
        return st

    def _log_target_delta(self, a: TwistState, b: TwistState, sigma: float,
                          exponent: float) -> torch.Tensor:
        """``log pi(b) - log pi(a)`` per particle (float64)."""
        exact = getattr(self.prior, "log_prob_at", None)
        if callable(exact):
            dprior = (exact(b.x, sigma) - exact(a.x, sigma)).to(torch.float64)
        else:
            sa = (_flat(a.x0) - _flat(a.x)) / sigma**2
            sb = (_flat(b.x0) - _flat(b.x)) / sigma**2
            dprior = 0.5 * ((sa + sb) * (_flat(b.x) - _flat(a.x))).sum(1)
        return dprior + exponent * (b.ell - a.ell)

    def _grad(self, st: TwistState, sigma: float, exponent: float) -> torch.Tensor:
        return (st.x0 - st.x) / sigma**2 + exponent * st.grad

    def _sweep(self, st: TwistState, sigma: float, exponent: float, ref) -> TwistState:
        if self.kind == "hmc":
            prop, log_alpha = self._leapfrog(st, sigma, exponent, ref[1].sqrt())
        else:
            prop, log_alpha = self._proposal(st, sigma, exponent, ref)
        u = torch.rand(log_alpha.shape[0], dtype=torch.float64, device=log_alpha.device,
                       generator=self.generator)
        accept = torch.isfinite(log_alpha) & (torch.log(u) < log_alpha)
        rate = float(accept.to(torch.float64).mean())
        self.acceptance.append(rate)
        self.steps.append(self.step)
        self._adapt(rate)
        return st.where(accept, prop)

    def _leapfrog(self, st: TwistState, sigma: float, exponent: float,
                  scale: torch.Tensor) -> tuple[TwistState, torch.Tensor]:
        """One HMC trajectory of every particle; returns the end state and ``log alpha``."""
        x = st.x
        eps = self.step
        mom = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        u = _flat(mom)
        kinetic0 = 0.5 * (u**2).sum(1)
        u = u + 0.5 * eps * scale * _flat(self._grad(st, sigma, exponent))
        exact = callable(getattr(self.prior, "log_prob_at", None))
        dprior = torch.zeros_like(kinetic0)
        cur = st
        for j in range(self.n_leapfrog):
            xn = (_flat(cur.x) + eps * scale * u).to(x.dtype).reshape(x.shape)
            nxt = evaluate(self.prior, self.log_likelihood, xn, sigma, self.max_batch)
            self.evaluations += 1
            if not exact:
                dprior = dprior + self._log_target_delta(cur, nxt, sigma, 0.0)
            last = j == self.n_leapfrog - 1
            u = u + (0.5 if last else 1.0) * eps * scale * _flat(self._grad(nxt, sigma, exponent))
            cur = nxt
        if exact:
            log_pi = self._log_target_delta(st, cur, sigma, exponent)
        else:
            log_pi = dprior + exponent * (cur.ell - st.ell)
        return cur, log_pi - 0.5 * (u**2).sum(1) + kinetic0

    def _proposal(self, st: TwistState, sigma: float, exponent: float,
                  ref) -> tuple[TwistState, torch.Tensor]:
        """A MALA or pCN proposal of every particle; returns it and ``log alpha``."""
        x = st.x
        xf = _flat(x)
        xi = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        if self.kind == "mala":
            h = self.step * ref[1]  # (n,) per-pixel steps
            g = _flat(self._grad(st, sigma, exponent))
            new = xf + h * g + (2.0 * h).sqrt() * _flat(xi)
            x_new = new.to(x.dtype).reshape(x.shape)
        else:
            m, c = ref
            beta = self.step
            new = m + math.sqrt(1.0 - beta**2) * (xf - m) + beta * c.sqrt() * _flat(xi)
            x_new = new.to(x.dtype).reshape(x.shape)
        prop = evaluate(self.prior, self.log_likelihood, x_new, sigma, self.max_batch)
        self.evaluations += 1
        log_alpha = self._log_target_delta(st, prop, sigma, exponent)
        if self.kind == "mala":
            g_new = _flat(self._grad(prop, sigma, exponent))
            xn = _flat(x_new)
            fwd = xn - xf - h * g
            bwd = xf - xn - h * g_new
            log_alpha = log_alpha + ((fwd**2 - bwd**2) / (4.0 * h)).sum(1)
        else:
            m, c = ref
            log_alpha = log_alpha + 0.5 * (((_flat(x_new) - m) ** 2 - (xf - m) ** 2) / c).sum(1)
        return prop, log_alpha

    def _adapt(self, rate: float) -> None:
        step = self.step * math.exp(ADAPT_GAIN * (rate - self.target_acceptance))
        self.step = min(step, 0.999) if self.kind == "pcn" else step

    def diagnostics(self) -> dict:
        """Acceptance rate and step of every sweep, and the number of move evaluations."""
        return {"rejuvenation": self.kind, "move_acceptance": list(self.acceptance),
                "move_steps": list(self.steps), "move_evaluations": self.evaluations}
