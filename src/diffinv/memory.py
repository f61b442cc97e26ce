"""A memory check before sampling: refuse requests that cannot fit, before minutes are spent.

:func:`check_memory` estimates the largest allocations of a run - the chains' state (the
current state, the Tweedie estimate, the gradient, fresh noise and what autograd keeps through
the prior: :data:`STATE_COPIES` image-sized tensors per chain) and the operator's outputs for
every chain (:data:`DATA_COPIES` data-sized tensors), plus the caches operators report through
a ``cache_bytes(device, dtype)`` method (the CT projector's sparse matrices) - and compares
the estimate with the memory available on the data's device (``MemAvailable`` and the cgroup
limit on CPU, free memory on CUDA).  The estimate is a lower bound: a network prior's
activations and a solver's dense factorizations come on top.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

__all__ = ["available_memory", "sampler_memory_estimate", "operator_cache_bytes", "check_memory"]

STATE_COPIES = 8
DATA_COPIES = 4


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes of memory available for new allocations on ``device`` (``None``: unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cap = _read_int("/sys/fs/cgroup/memory.max")
    used = _read_int("/sys/fs/cgroup/memory.current")
    if cap is not None and used is not None:
        limits.append(max(cap - used, 0))
    return min(limits) if limits else None


def sampler_memory_estimate(
    n_samples: int,
    image_shape: tuple[int, ...],
    data_shape: tuple[int, ...],
    dtype: torch.dtype,
    complex_data: bool = False,
) -> int:
    """Estimated bytes of the chains' state and operator outputs (see the module docstring).

    Parameters
    ----------
    n_samples : int
        Chains (or particles).
    image_shape, data_shape : tuple of int
        Per-item image and data shapes.
    dtype : torch.dtype
        Real dtype of the chains.
    complex_data : bool
        Data values are complex (twice the bytes).
    """
    item = torch.empty((), dtype=dtype).element_size()
    state = STATE_COPIES * math.prod(image_shape) * item
    data = DATA_COPIES * math.prod(data_shape) * item * (2 if complex_data else 1)
    return int(n_samples) * (state + data)


def operator_cache_bytes(
    operator: object, device: torch.device | str, dtype: torch.dtype, _depth: int = 0
) -> int:
    """Bytes an operator (and its sub-operators) will cache when applied on ``device`` to
    ``dtype`` tensors: the sum of their ``cache_bytes(device, dtype)`` methods where defined
    (e.g. the CT projector's sparse matrices)."""
    if _depth > 16:
        return 0
    total = 0
    method = getattr(operator, "cache_bytes", None)
    if callable(method):
        total += int(method(device, dtype))
    for value in getattr(operator, "__dict__", {}).values():
        children = value if isinstance(value, (list, tuple)) else [value]
        for child in children:
            if hasattr(child, "forward") and not isinstance(child, torch.Tensor):
                total += operator_cache_bytes(child, device, dtype, _depth + 1)
    return total


def check_memory(
    n_samples: int,
    image_shape: tuple[int, ...],
    y: torch.Tensor,
    dtype: torch.dtype,
    limit: int | None = None,
    operator: object = None,
) -> int:
    """Raise ``ValueError`` naming ``n_samples`` when the estimate exceeds the memory limit.

    The estimate is :func:`sampler_memory_estimate` plus, when ``operator`` is given, its
    :func:`operator_cache_bytes`.  ``limit`` defaults to :func:`available_memory` on ``y``'s
    device (no check when unknown).  Returns the estimate in bytes.
    """
    chains = sampler_memory_estimate(n_samples, image_shape, tuple(y.shape[1:]), dtype,
                                     y.is_complex())
    caches = operator_cache_bytes(operator, y.device, dtype) if operator is not None else 0
    need = chains + caches
    if limit is None:
        limit = available_memory(y.device)
    if limit is not None and need > limit:
        raise ValueError(
            f"n_samples: {n_samples} chains of {tuple(image_shape)} images need an estimated "
            f"{need / 2**30:.3g} GiB (chains {chains / 2**30:.3g} GiB, operator caches "
            f"{caches / 2**30:.3g} GiB), more than the {limit / 2**30:.3g} GiB of memory "
            f"available on {y.device}; use fewer samples or a smaller problem"
        )
    return need
