"""Small helpers shared by solvers."""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["initial_noise", "progress_bar"]


def initial_noise(
    n: int,
    image_shape: tuple[int, ...],
    sigma: float,
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Draw ``x_T ~ N(0, sigma^2 I)`` of shape ``(n, *image_shape)``."""
    return sigma * torch.randn((n, *image_shape), dtype=dtype, device=device, generator=generator)


def progress_bar(it: Iterable, enabled: bool, desc: str) -> Iterable:
    """Wrap ``it`` in a tqdm progress bar when ``enabled``."""
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)
