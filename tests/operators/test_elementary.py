"""Elementary operators: dense matrix, identity, diagonal and the real/complex adapter."""

import pytest
import torch

from diffinv.operators.elementary import Diagonal, Identity, MatrixOperator, RealToComplex
from diffinv.operators.testing import check_adjoint
from tests.conftest import random_matrix

ADJOINT_TOL = 1e-6
g = torch.Generator().manual_seed(1)


def _mat(m, n, complex_=False):
    return random_matrix(m, n, complex_, g)


@pytest.mark.parametrize("complex_op", [False, True])
@pytest.mark.parametrize("complex_x", [False, True])
def test_matrix_operator_adjoint(complex_op, complex_x):
    op = MatrixOperator(_mat(5, 12, complex_op), in_shape=(3, 4))
    dtype = torch.complex128 if complex_x else torch.float64
    assert check_adjoint(op, (2, 3, 4), dtype) < ADJOINT_TOL


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
