"""Operator algebra: exact adjoints, composition, scaling, adapters, checks that can fail."""

import pytest
import torch

from diffinv.operators import (
    Diagonal,
    ElementwiseOperator,
    LinearOperator,
    MatrixOperator,
)
from diffinv.operators.testing import (
    check_adjoint,
    check_gradient,
    check_linearity,
    operator_norm,
)
from tests.conftest import random_matrix

ADJOINT_TOL = 1e-6
g = torch.Generator().manual_seed(1)


def _mat(m, n, complex_=False):
    return random_matrix(m, n, complex_, g)


def test_composition_scaling_sum_and_adjoint_are_exact():
    a = MatrixOperator(_mat(6, 8, True))
    b = MatrixOperator(_mat(8, 8, True))
    d = Diagonal(torch.randn(8, dtype=torch.float64, generator=g) + 0j)
    for op in [a @ b, (2.0 - 1.5j) * a, a @ (b + d), a @ (b - 3 * d), -a, a.H.H, (a @ b).H]:
        shape = (3, op.in_shape[0]) if op.in_shape else (3, 8)
        assert check_adjoint(op, shape, torch.complex128) < ADJOINT_TOL, op


def test_adjoint_of_composition_reverses_order():
    a = MatrixOperator(_mat(4, 6))
    b = MatrixOperator(_mat(6, 5))
    ab = a @ b
    y = torch.randn(2, 4, dtype=torch.float64, generator=g)
    torch.testing.assert_close(ab.adjoint(y), b.adjoint(a.adjoint(y)))
    torch.testing.assert_close(ab.to_matrix((5,)), a.matrix @ b.matrix)
    torch.testing.assert_close(ab.to_matrix((5,), block=2), a.matrix @ b.matrix)  # by blocks
    with pytest.raises(ValueError, match="block"):
        ab.to_matrix((5,), block=0)
    assert a.H.H is a


def test_check_adjoint_detects_a_wrong_adjoint():
    class Wrong(LinearOperator):
        def __init__(self):
            self.a = _mat(5, 5)

        def forward(self, x):
            return x @ self.a.T

        def adjoint(self, y):
            return y @ self.a  # should be a^T applied: y @ a is correct; break it below

    op = Wrong()
    assert check_adjoint(op, (2, 5)) < ADJOINT_TOL
    op.adjoint = lambda y: y @ op.a.T  # the forward map, not its transpose
    assert check_adjoint(op, (2, 5)) > 1e-2


def test_operator_norm_of_a_matrix():
    a = _mat(7, 5)
    est = operator_norm(MatrixOperator(a), (1, 5), n_iter=200)
    assert est == pytest.approx(float(torch.linalg.matrix_norm(a, 2)), rel=1e-6)


def test_linearity_and_gradient_checks():
    a = MatrixOperator(_mat(6, 4, True))
    assert check_linearity(a, (2, 4)) < 1e-12
    intensity = ElementwiseOperator(lambda z: z.abs() ** 2, "abs2") @ a
    assert check_linearity(intensity, (2, 4)) > 1e-3  # nonlinear: the check must say so
    assert check_gradient(intensity, (2, 4))
    assert check_gradient(intensity, (2, 4), dtype=torch.complex128)


def test_check_gradient_detects_a_wrong_gradient():
    class BadGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x  # should be 2x

    with pytest.raises(AssertionError, match="gradient check failed"):
        check_gradient(ElementwiseOperator(BadGrad.apply, "bad"), (2, 3))


def test_to_moves_tensors_and_does_not_copy_inputs():
    a = _mat(3, 3)
    op = MatrixOperator(a) @ Diagonal(torch.ones(3, dtype=torch.float64))
    op.to("cpu")
    x = torch.randn(2, 3, dtype=torch.float64, generator=g)
    x0 = x.clone()
    op(x)
    op.H(op(x))
    assert torch.equal(x, x0)
