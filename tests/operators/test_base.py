"""Operator algebra: exact adjoints, composition, scaling, adapters, checks that can fail."""

import pytest
import torch

from diffinv.operators import (
    Diagonal,
    ElementwiseOperator,
    Identity,
    LinearOperator,
    MatrixOperator,
    RealToComplex,
)
from diffinv.operators.testing import (
    check_adjoint,
    check_gradient,
    check_linearity,
    operator_norm,
)

ADJOINT_TOL = 1e-6
g = torch.Generator().manual_seed(1)


def _mat(m, n, complex_=False):
    a = torch.randn(m, n, dtype=torch.float64, generator=g)
    if complex_:
        a = a + 1j * torch.randn(m, n, dtype=torch.float64, generator=g)
    return a


@pytest.mark.parametrize("complex_op", [False, True])
@pytest.mark.parametrize("complex_x", [False, True])
def test_matrix_operator_adjoint(complex_op, complex_x):
    op = MatrixOperator(_mat(5, 12, complex_op), in_shape=(3, 4))
    dtype = torch.complex128 if complex_x else torch.float64
    assert check_adjoint(op, (2, 3, 4), dtype) < ADJOINT_TOL


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
    assert a.H.H is a


def test_real_to_complex_adapter_is_exact_and_invertible():
    op = RealToComplex()
    assert check_adjoint(op, (3, 4, 5, 5), torch.float64) < ADJOINT_TOL
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, generator=g)
    z = op(x)
    assert z.dtype == torch.complex128 and z.shape == (2, 1, 3, 3)
    torch.testing.assert_close(op.adjoint(z), x)
    with pytest.raises(ValueError, match="x"):
        op(torch.randn(2, 3, 4, 4))
    # a complex operator seen through the adapter stays exactly adjoint (real inner product)
    c = MatrixOperator(_mat(7, 9, True), in_shape=(1, 3, 3))
    assert check_adjoint(c @ op, (2, 2, 3, 3), torch.float64) < ADJOINT_TOL


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


def test_identity_and_diagonal():
    assert check_adjoint(Identity(), (2, 3)) < ADJOINT_TOL
    d = Diagonal(torch.randn(3, 4, dtype=torch.complex128, generator=g))
    assert check_adjoint(d, (2, 3, 4), torch.complex128) < ADJOINT_TOL
    with pytest.raises(ValueError, match="weights"):
        Diagonal([1.0, 2.0])


def test_matrix_operator_rejects_bad_shapes():
    with pytest.raises(ValueError, match="matrix"):
        MatrixOperator(torch.zeros(3))
    with pytest.raises(ValueError, match="in_shape"):
        MatrixOperator(torch.zeros(3, 6), in_shape=(2, 2))


def test_to_moves_tensors_and_does_not_copy_inputs():
    a = _mat(3, 3)
    op = MatrixOperator(a) @ Diagonal(torch.ones(3, dtype=torch.float64))
    op.to("cpu")
    x = torch.randn(2, 3, dtype=torch.float64, generator=g)
    x0 = x.clone()
    op(x)
    op.H(op(x))
    assert torch.equal(x, x0)
