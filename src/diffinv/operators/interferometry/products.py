r"""Data products as one inverse problem: weighted sums of likelihood terms.

Each data product ``d`` is an operator ``A_d`` (image -> real vector) with a noise model
``n_d``; a combined problem stacks the outputs and uses

.. math:: \log p(y \mid x) = \sum_d w_d \log p_d(y_d \mid A_d(x))

(weights ``w_d`` temper each term, as the RML data weights of eht-imaging do; ``w_d = 1``
is the plain joint likelihood of independent products).  Products:

* ``"vis"``: complex visibilities as (Re, Im) pairs, Gaussian with the thermal sigma;
* ``"amp"``: visibility amplitudes against debiased measured amplitudes;
* ``"cphase"``: closure phases (:class:`.closures.ClosurePhaseNoise`);
* ``"logcamp"``: log closure amplitudes, Gaussian;
* ``"flux"``: the total-flux constraint ``sum x = F`` with sigma ``flux_sigma``.

:func:`product_reduced_chi2` reports the reduced chi^2 of each product for any image batch
(the diagnostic quoted in the EHT imaging papers).
"""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator, Operator
from ..noise import GaussianNoise
from ..problem import InverseProblem
from .closures import ClosurePhases, LogClosureAmplitudes, debiased_amplitudes
from .observation import Observation
from .visibilities import Visibilities

__all__ = [
    "TotalFlux",
    "VisibilityAmplitudes",
    "VisibilitiesAsReal",
    "StackedOperator",
    "WeightedNoise",
    "data_product_problem",
    "product_reduced_chi2",
]


class TotalFlux(LinearOperator):
    """``(B, 1, N, N)`` image -> ``(B, 1)`` total flux ``sum x`` (Jy); adjoint broadcasts."""

    def __init__(self, image_size: int):
        self.image_size = int(image_size)
        self.in_shape = (1, self.image_size, self.image_size)
        self.out_shape = (1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).sum(1, keepdim=True)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        n = self.image_size
        return y.reshape(-1, 1, 1, 1).expand(-1, 1, n, n).clone()


class VisibilityAmplitudes(Operator):
    """Image -> visibility amplitudes ``|V(x)|`` (Jy).

    ``data`` are the debiased measured amplitudes ``sqrt(max(|V|^2 - sigma^2, 0))`` and
    ``sigma`` the thermal sigmas (the high-SNR Gaussian approximation of the Rice law).
    """

    def __init__(self, observation: Observation, image_size: int, fov_uas: float, pulse="box"):
        self.visibilities = Visibilities(observation, image_size, fov_uas, pulse)
        self.in_shape = self.visibilities.in_shape
        self.out_shape = self.visibilities.out_shape
        self.data = debiased_amplitudes(observation.vis, observation.sigma)
        self.sigma = observation.sigma.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.visibilities(x).abs()


class VisibilitiesAsReal(Operator):
    """Image -> ``(B, 2M)`` real vector ``(Re V_1, Im V_1, Re V_2, ...)``."""

    def __init__(self, observation: Observation, image_size: int, fov_uas: float, pulse="box"):
        self.visibilities = Visibilities(observation, image_size, fov_uas, pulse)
        self.in_shape = self.visibilities.in_shape
        self.out_shape = (2 * self.visibilities.out_shape[0],)
        self.data = torch.view_as_real(observation.vis).reshape(-1)
        self.sigma = observation.sigma.repeat_interleave(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.visibilities(x)
        return torch.view_as_real(v).reshape(v.shape[0], -1)


class StackedOperator(Operator):
    """Concatenate the real outputs ``(B, m_d)`` of several operators along dim 1."""

    def __init__(self, operators: list[Operator]):
        if not operators:
            raise ValueError("operators: expected at least one operator")
        self.operators = list(operators)
        self.in_shape = operators[0].in_shape
        self.sizes = [int(op.out_shape[0]) for op in operators]
        self.out_shape = (sum(self.sizes),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([op(x).reshape(x.shape[0], -1) for op in self.operators], dim=1)


class WeightedNoise:
    """Noise model of stacked products: ``log p = sum_d w_d log p_d``.

    ``chi2`` and ``n_data`` are the unweighted totals, so the reduced chi^2 of the problem
    is that of all data together; :func:`product_reduced_chi2` splits it by product.
    """

    def __init__(self, noises: list, sizes: list[int], weights: list[float], names: list[str]):
        if not (len(noises) == len(sizes) == len(weights) == len(names)):
            raise ValueError("noises, sizes, weights, names: expected lists of equal length")
        if any(not (w >= 0 and math.isfinite(w)) for w in weights):
            raise ValueError(f"weights: expected non-negative finite weights, got {weights}")
        self.noises, self.sizes = list(noises), list(sizes)
        self.weights, self.names = [float(w) for w in weights], list(names)

    def _split(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(t, self.sizes, dim=1)

    def sample(self, y_clean: torch.Tensor, generator: torch.Generator | None = None):
        parts = [n.sample(p, generator) for n, p in zip(self.noises, self._split(y_clean))]
        return torch.cat(parts, dim=1)

    def log_likelihood(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for n, w, a, b in zip(self.noises, self.weights, self._split(y), self._split(y_clean)):
            if w:
                total = total + w * n.log_likelihood(a.expand_as(b), b)
        return total

    def chi2(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        parts = zip(self.noises, self._split(y), self._split(y_clean))
        return sum(n.chi2(a.expand_as(b), b) for n, a, b in parts)

    def chi2_by_product(self, y: torch.Tensor, y_clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reduced chi^2 of each product, ``{name: (B,)}``."""
        out = {}
        for name, n, a, b in zip(self.names, self.noises, self._split(y), self._split(y_clean)):
            out[name] = n.chi2(a.expand_as(b), b) / max(n.n_data(a), 1)
        return out

    def n_data(self, y: torch.Tensor) -> int:
        return int(sum(self.sizes))

    def residual_norm(self, y: torch.Tensor, y_clean: torch.Tensor) -> torch.Tensor:
        parts = zip(self.noises, self.weights, self._split(y), self._split(y_clean))
        return torch.sqrt(sum(w * n.residual_norm(a.expand_as(b), b) ** 2 for n, w, a, b in parts))

    def __repr__(self) -> str:
        return (
            "WeightedNoise("
            + ", ".join(f"{n}: {w:g}" for n, w in zip(self.names, self.weights))
            + ")"
        )


def data_product_problem(
    observation: Observation,
    image_size: int,
    fov_uas: float,
    weights: dict[str, float] | None = None,
    total_flux: float | None = None,
    flux_sigma: float | None = None,
    pulse: str = "box",
    dtype: torch.dtype = torch.float32,
) -> InverseProblem:
    """One :class:`InverseProblem` from a weighted combination of data products.

    Parameters
    ----------
    observation : Observation
        Data (scan-average first for per-scan closures).
    image_size, fov_uas : int, float
        Image grid (pixels per side, micro-arcseconds).
    weights : dict, optional
        ``{"vis", "amp", "cphase", "logcamp", "flux"} -> weight``; products with weight 0 or
        absent are left out.  Default ``{"cphase": 1, "logcamp": 1, "flux": 1}``.
    total_flux : float, optional
        Total flux (Jy) for the ``"flux"`` term; needed when ``"flux"`` is used.
    flux_sigma : float, optional
        Sigma of the flux constraint, Jy (default 1 % of ``total_flux``).
    pulse : str
        Pixel response of the visibility operator.
    dtype : torch.dtype
        Dtype of the data vector ``y``.

    Returns
    -------
    InverseProblem
        Its noise is a :class:`WeightedNoise`; ``problem.operator`` a :class:`StackedOperator`.
    """
    weights = dict(weights if weights is not None else {"cphase": 1.0, "logcamp": 1.0, "flux": 1.0})
    known = ("vis", "amp", "cphase", "logcamp", "flux")
    unknown = set(weights) - set(known)
    if unknown:
        raise ValueError(f"weights: unknown data products {sorted(unknown)}; expected {known}")
    ops, noises, ws, names, data = [], [], [], [], []
    for name in known:
        w = weights.get(name, 0.0)
        if not w:
            continue
        if name == "flux":
            if total_flux is None or not total_flux > 0:
                raise ValueError("total_flux: the 'flux' product needs a positive total flux in Jy")
            op = TotalFlux(image_size)
            sigma = flux_sigma if flux_sigma is not None else 0.01 * total_flux
            noise, y = GaussianNoise(float(sigma)), torch.tensor([float(total_flux)])
        else:
            cls = {
                "vis": VisibilitiesAsReal,
                "amp": VisibilityAmplitudes,
                "cphase": ClosurePhases,
                "logcamp": LogClosureAmplitudes,
            }[name]
            op = cls(observation, image_size, fov_uas, pulse=pulse)
            noise = op.noise() if hasattr(op, "noise") else GaussianNoise(op.sigma)
            y = op.data
        ops.append(op)
        noises.append(noise)
        ws.append(w)
        names.append(name)
        data.append(y.to(torch.float64))
    if not ops:
        raise ValueError("weights: expected at least one data product with a positive weight")
    stacked = StackedOperator(ops)
    noise = WeightedNoise(noises, stacked.sizes, ws, names)
    y = torch.cat(data)[None].to(dtype)
    return InverseProblem(stacked, noise, y, image_shape=(1, image_size, image_size))


def product_reduced_chi2(problem: InverseProblem, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Reduced chi^2 of each data product of a :func:`data_product_problem` for images ``x``."""
    if not isinstance(problem.noise, WeightedNoise):
        raise ValueError("problem: expected a problem built by data_product_problem")
    return problem.noise.chi2_by_product(problem.y, problem.forward(x))
