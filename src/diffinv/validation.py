"""Argument checks shared by every layer: each raises ``ValueError`` naming the argument.

Every public function and option of the package validates its inputs through these, so that a
bad value gets the same clear message everywhere (``"steps: expected a positive integer, got
0"``) and booleans are never mistaken for integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import torch

__all__ = [
    "finite_tensor",
    "in_range",
    "nonnegative_float",
    "one_of",
    "optional",
    "positive_float",
    "positive_int",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A real scalar: Python/NumPy numbers and one-element real tensors, never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, Real)


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as ``int`` if it is an integer >= 1 (not a bool), else raise."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """Return ``value`` as ``float`` if it is a finite real number > 0, else raise."""
    if not _is_real(value) or not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as ``float`` if it is a finite real number >= 0, else raise."""
    if not _is_real(value) or not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
    return float(value)


def in_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as ``float`` if it is a real number in the interval, else raise.

    The interval is ``[low, high]``; ``low_open`` / ``high_open`` exclude an end.
    """
    ok = _is_real(value) and math.isfinite(float(value))
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name}: expected a number in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


def optional(check, name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``None`` passes; anything else goes through ``check(name, value, ...)``."""
    return None if value is None else check(name, value, *args, **kwargs)


def finite_tensor(name: str, value: Any) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor`` with no NaN or Inf, else raise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.numel() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: contains NaN or Inf")
    return value
