"""Shared argument checks (diffinv.validation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffinv.validation import (
    finite_tensor,
    in_range,
    nonnegative_float,
    one_of,
    optional,
    positive_float,
    positive_int,
)


def test_positive_int_rejects_bools_floats_and_non_positive():
    assert positive_int("steps", 3) == 3 and positive_int("steps", np.int64(2)) == 2
    for bad in (0, -1, 2.5, True, False, "3", None):
        with pytest.raises(ValueError, match="steps: expected a positive integer"):
            positive_int("steps", bad)


def test_float_checks():
    assert positive_float("sigma", 0.5) == 0.5
    assert positive_float("sigma", np.float32(2.0)) == 2.0
    assert positive_float("sigma", torch.tensor(3.0)) == 3.0
    for bad in (0.0, -1.0, math.inf, math.nan, True, "1", torch.ones(2)):
        with pytest.raises(ValueError, match="sigma: expected a positive finite number"):
            positive_float("sigma", bad)
    assert nonnegative_float("zeta", 0) == 0.0
    with pytest.raises(ValueError, match="zeta: expected a non-negative finite number"):
        nonnegative_float("zeta", -1e-9)


def test_in_range_open_and_closed_ends():
    assert in_range("eta", 0.0, 0.0, 1.0) == 0.0 and in_range("eta", 1, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"lr: expected a number in \(0.0, 2.0\), got 2"):
        in_range("lr", 2, 0.0, 2.0, low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"lr: expected a number in \(0.0, 2.0\)"):
        in_range("lr", 0.0, 0.0, 2.0, low_open=True, high_open=True)
    with pytest.raises(ValueError, match="eta"):
        in_range("eta", math.nan, 0.0, 1.0)


def test_one_of_optional_and_finite_tensor():
    assert one_of("kernel", "ddpm", ("ddpm", "midpoint")) == "ddpm"
    with pytest.raises(ValueError, match=r"kernel: expected one of \['ddpm', 'midpoint'\]"):
        one_of("kernel", "x", ("ddpm", "midpoint"))
    assert optional(positive_int, "max_batch", None) is None
    with pytest.raises(ValueError, match="max_batch"):
        optional(positive_int, "max_batch", 0)
    t = torch.ones(3)
    assert finite_tensor("y", t) is t
    with pytest.raises(ValueError, match="y: contains NaN or Inf"):
        finite_tensor("y", torch.tensor([1.0, math.nan]))
    with pytest.raises(ValueError, match="y: expected a torch.Tensor, got ndarray"):
        finite_tensor("y", np.ones(3))
