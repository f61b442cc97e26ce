"""The run context that :func:`diffinv.sample` hands every solver.

A solver is ``fn(problem, prior, ctx, **options) -> SolverOutput``: the settings every sampler
shares (noise levels, number of chains, image shape, dtype, random generator, device,
callback, progress bar) travel in one frozen :class:`RunContext`; the solver's own options
stay keyword-only parameters so that the registry can validate them by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .utils import progress_bar

__all__ = ["Denoiser", "RunContext"]

#: A prior as the solvers see it: ``D(x, sigma) -> E[x0 | x]`` with ``sigma`` of shape ``(batch,)``.
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class RunContext:
    """Settings shared by every solver in one run.

    Attributes
    ----------
    sigmas : torch.Tensor
        ``(steps + 1,)`` float64 decreasing noise levels (VE/EDM convention, image units),
        ending in 0.
    n_samples : int
        Number of chains (particles for SMC) this call runs.
    image_shape : tuple of int
        Shape of one image ``x`` (without the batch axis).
    dtype : torch.dtype
        Real dtype of the chains.
    generator : torch.Generator
        The run's only source of randomness (on ``device``).
    device : torch.device
        Device of the data and the chains.
    callback : callable, optional
        Called after each step with a dict (``step``, ``sigma``, ``x``, ``chain_offset``, ...).
    progress : bool
        Show a progress bar over the steps.
    chain_offset : int
        Index of this call's first chain among all chains (non-zero in chunked runs).
    """

    sigmas: torch.Tensor
    n_samples: int
    image_shape: tuple[int, ...]
    dtype: torch.dtype
    generator: torch.Generator
    device: torch.device = torch.device("cpu")
    callback: Callable[[dict[str, Any]], None] | None = None
    progress: bool = False
    chain_offset: int = 0

    @property
    def steps(self) -> int:
        """Number of transitions (``len(sigmas) - 1``)."""
        return len(self.sigmas) - 1

    def levels(self, desc: str) -> Iterator[tuple[int, float, float]]:
        """Yield ``(i, sigma_i, sigma_{i+1})`` for every step, under a progress bar if asked."""
        for i in progress_bar(range(self.steps), self.progress, desc):
            yield i, float(self.sigmas[i]), float(self.sigmas[i + 1])

    def initial_noise(self, n: int | None = None) -> torch.Tensor:
        """Draw ``x_T ~ N(0, sigma_0^2 I)`` of shape ``(n, *image_shape)`` (``n`` defaults to
        ``n_samples``)."""
        n = self.n_samples if n is None else n
        shape = (n, *self.image_shape)
        z = torch.randn(shape, dtype=self.dtype, device=self.device, generator=self.generator)
        return float(self.sigmas[0]) * z

    def sigma_batch(self, sigma: float, n: int | None = None) -> torch.Tensor:
        """``(n,)`` tensor filled with ``sigma`` in the run's dtype and device."""
        n = self.n_samples if n is None else n
        return torch.full((n,), sigma, dtype=self.dtype, device=self.device)

    def report(self, **info: Any) -> None:
        """Pass ``info`` (plus ``chain_offset``) to the callback, if there is one."""
        if self.callback is not None:
            self.callback({**info, "chain_offset": self.chain_offset})

    def chunk(self, n: int, offset: int) -> RunContext:
        """The context of a sub-run of ``n`` chains starting at chain ``offset``."""
        return dataclasses.replace(self, n_samples=n, chain_offset=self.chain_offset + offset)
