"""Generated shapes, dtypes and parameters for the public operators and noise models.

Whatever comes in, an operator either returns ``(batch, *out_shape)`` for a valid batch or
raises ``ValueError`` whose message starts with ``x:``; a noise model's constructor accepts
only valid parameters and names the parameter otherwise; ``InverseProblem`` accepts data of
the operator's output shape (batch of 1) and names ``y`` otherwise.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffinv.operators import GaussianNoise, InverseProblem, PoissonNoise
from diffinv.operators.ct.noise import TransmissionPoisson
from diffinv.operators.phase_retrieval import AmplitudeGaussianNoise, PhotonNoise
from diffinv.testing.hostile_sweep import operator_input_is_valid, public_operators

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float32, torch.float64, torch.complex64, torch.int64, torch.bool]


OPS = public_operators()


@st.composite
def _inputs(draw, op):
    """Mostly near-valid shapes (the operator's own, with a dimension dropped, added or
    changed, or an empty batch), plus arbitrary ones."""
    in_shape = op.in_shape or (2, 4, 4)
    batch = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["valid", "no-batch", "extra", "changed", "random"]))
    if kind == "valid":
        shape = (batch, *in_shape)
    elif kind == "no-batch":
        shape = tuple(in_shape)
    elif kind == "extra":
        shape = (batch, 1, *in_shape)
    elif kind == "changed":
        i = draw(st.integers(0, len(in_shape) - 1))
        dims = list(in_shape)
        dims[i] = dims[i] + draw(st.sampled_from([-1, 1, 3]))
        shape = (batch, *[max(d, 0) for d in dims])
    else:
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=5)))
    dtype = draw(st.sampled_from(DTYPES))
    return torch.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("name", list(OPS))
@SETTINGS
@given(data=st.data())
def test_operator_accepts_valid_batches_and_names_x_otherwise(name, data):
    op = OPS[name]
    x = data.draw(_inputs(op))
    valid = operator_input_is_valid(name, op, x)
    try:
        y = op(x)
    except ValueError as err:
        assert str(err).startswith("x: "), f"{name}{tuple(x.shape)} {x.dtype}: {err}"
        assert not valid, f"{name} refused a valid input {tuple(x.shape)} {x.dtype}: {err}"
        return
    assert valid, f"{name} accepted {tuple(x.shape)} {x.dtype} and returned {tuple(y.shape)}"
    assert y.shape[0] == x.shape[0]
    if op.out_shape is not None:
        assert tuple(y.shape[1:]) == op.out_shape


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-5, 5),
)
NOISE = {
    "GaussianNoise": (GaussianNoise, "sigma"),
    "PoissonNoise": (PoissonNoise, "gain"),
    "TransmissionPoisson": (TransmissionPoisson, "I0"),
    "PhotonNoise": (PhotonNoise, "flux"),
    "AmplitudeGaussianNoise": (AmplitudeGaussianNoise, "sigma"),
}


@pytest.mark.parametrize("name", list(NOISE))
@SETTINGS
@given(value=NUMBERS)
def test_noise_parameters_are_checked_and_named(name, value):
    cls, param = NOISE[name]
    ok = math.isfinite(value) and value > 0
    if name == "PhotonNoise":  # the gain is 1 / flux
        ok = ok and math.isfinite(1.0 / value)
    try:
        cls(value)
    except ValueError as err:
        assert str(err).startswith(f"{param}: "), err
        assert not ok, f"{name}({value!r}) refused: {err}"
        return
    assert ok, f"{name}({value!r}) accepted"


@st.composite
def _data(draw):
    shape = draw(st.sampled_from([(1, 5), (5,), (2, 5), (1, 4), (1, 1, 5), (0, 5), ()]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.complex64]))
    fill = draw(st.sampled_from([1.0, 0.0, -1.0, math.nan, math.inf]))
    return torch.full(shape, fill, dtype=dtype)


@pytest.mark.parametrize("noise", ["gaussian", "poisson"])
@SETTINGS
@given(y=_data())
def test_problem_data_are_checked_and_named(noise, y):
    op = OPS["MatrixOperator"]
    model = GaussianNoise(1.0) if noise == "gaussian" else PoissonNoise(1.0)
    shape_ok = tuple(y.shape) in ((1, 5), (5,))
    value_ok = bool(torch.isfinite(y).all()) and (
        noise == "gaussian" or (not y.is_complex() and bool((y.real >= 0).all())))
    try:
        problem = InverseProblem(op, model, y)
        chi2 = problem.chi2(torch.zeros(1, 2, 4))
    except ValueError as err:
        assert str(err).startswith("y: "), err
        assert not (shape_ok and value_ok and not y.is_complex()), err
        return
    assert shape_ok and value_ok and not y.is_complex(), f"accepted y {tuple(y.shape)} {y.dtype}"
    assert chi2.shape == (1,) and bool(torch.isfinite(chi2).all())
