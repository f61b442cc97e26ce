r"""Step-size adaptation to a target acceptance rate by dual averaging.

Hoffman & Gelman (2014), "The No-U-Turn sampler", JMLR 15, section 3.2.1 (Nesterov's dual
averaging applied to ``log eps``): after transition ``t`` with acceptance statistic
``alpha_t``,

.. math:: \bar H_t = (1 - \tfrac{1}{t + t_0}) \bar H_{t-1} + \tfrac{1}{t + t_0}(\delta - \alpha_t),
          \qquad \log\epsilon_{t+1} = \mu - \tfrac{\sqrt t}{\gamma} \bar H_t,

.. math:: \log\bar\epsilon_{t+1} = t^{-\kappa} \log\epsilon_{t+1}
          + (1 - t^{-\kappa}) \log\bar\epsilon_t,

with ``mu = log(10 eps_0)``, ``gamma = 0.05``, ``t0 = 10``, ``kappa = 0.75`` (their defaults).
``eps_{t+1}`` is used for the next transition; the averaged ``bar eps`` is the adapted value
to keep.  A sampler whose target changes in stages (annealing levels) restarts the scheme at
each stage from the previous stage's ``bar eps`` (:meth:`DualAveraging.restart`), as Stan
does between its warm-up windows.
"""

from __future__ import annotations

import math

__all__ = ["DualAveraging"]


class DualAveraging:
    """Dual-averaging adaptation of a positive step ``eps`` towards ``target`` acceptance.

    Parameters
    ----------
    step : float
        Initial step (positive, in the sampler's units).
    target : float
        Target mean acceptance ``delta`` in (0, 1).
    gamma, t0, kappa : float
        Hoffman & Gelman's constants (defaults 0.05, 10, 0.75).

    Attributes
    ----------
    step : float
        The step to use for the next transition.
    averaged : float
        The averaged step (the one to keep after adaptation).
    """

    def __init__(self, step: float, target: float, gamma: float = 0.05, t0: float = 10.0,
                 kappa: float = 0.75):
        if not (step > 0 and math.isfinite(step)):
            raise ValueError(f"step: expected a positive finite number, got {step!r}")
        if not 0.0 < target < 1.0:
            raise ValueError(f"target: expected a number in (0, 1), got {target!r}")
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.restart(step)

    def restart(self, step: float | None = None) -> None:
        """Start a new stage from ``step`` (default: the current averaged step)."""
        step = self.averaged if step is None else step
        self.mu = math.log(10.0 * step)
        self.t = 0
        self.h_bar = 0.0
        self.log_step = math.log(step)
        self.log_avg = math.log(step)

    def update(self, acceptance: float) -> float:
        """Record one transition's acceptance statistic (in [0, 1]; NaN counts as 0) and
        return the step for the next transition."""
        a = 0.0 if not math.isfinite(acceptance) else min(max(acceptance, 0.0), 1.0)
        self.t += 1
        w = 1.0 / (self.t + self.t0)
        self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - a)
        self.log_step = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        eta = self.t ** (-self.kappa)
        self.log_avg = eta * self.log_step + (1.0 - eta) * self.log_avg
        return self.step

    @property
    def step(self) -> float:
        """The step for the next transition."""
        return math.exp(self.log_step)

    @property
    def averaged(self) -> float:
        """The averaged step."""
        return math.exp(self.log_avg)
