"""Exponential moving average (EMA) of a network's weights.

The averaged weights ``theta_ema <- beta * theta_ema + (1 - beta) * theta`` give markedly
better diffusion samples than the raw weights (Song & Ermon 2020; Karras et al. 2022 use a
half-life in images seen).  Here the decay is set by a half-life in optimiser steps with a
warm-up, ``beta = min(0.5 ** (1 / half_life), (1 + step) / (10 + step))``, so early averages
are not dominated by the random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """Keeps an averaged copy of ``model``'s parameters and buffers.

    Parameters
    ----------
    model : nn.Module
        The model being trained (not modified).
    half_life : float
        Steps after which an old weight counts half as much.
    """

    def __init__(self, model: nn.Module, half_life: float = 500.0):
        if not half_life > 0:
            raise ValueError(f"half_life: expected a positive number of steps, got {half_life}")
        self.half_life = float(half_life)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.steps = 0

    def decay(self) -> float:
        """The current averaging factor ``beta``."""
        return min(0.5 ** (1.0 / self.half_life), (1.0 + self.steps) / (10.0 + self.steps))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average."""
        beta = self.decay()
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - beta)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.steps += 1

    def state_dict(self) -> dict:
        """Averaged weights and the step counter."""
        return {"model": self.model.state_dict(), "steps": self.steps,
                "half_life": self.half_life}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.steps = int(state["steps"])
        self.half_life = float(state["half_life"])
