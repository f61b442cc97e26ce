"""InverseProblem: validation and likelihood gradients."""

import pytest
import torch

from diffinv.operators import ElementwiseOperator, GaussianNoise, InverseProblem, MatrixOperator

g = torch.Generator().manual_seed(5)


def _problem(sigma=0.4):
    a = torch.randn(6, 9, dtype=torch.float64, generator=g)
    op = MatrixOperator(a, in_shape=(1, 3, 3))
    y = torch.randn(1, 6, dtype=torch.float64, generator=g)
    return InverseProblem(op, GaussianNoise(sigma), y), a, y


def test_gradient_of_gaussian_log_likelihood_is_exact():
    prob, a, y = _problem()
    x = torch.randn(4, 1, 3, 3, dtype=torch.float64, generator=g)
    ll, grad = prob.grad_log_likelihood(x)
    r = y - x.reshape(4, 9) @ a.T
    torch.testing.assert_close(grad.reshape(4, 9), r @ a / 0.4**2)
    assert ll.shape == (4,)
    assert not x.requires_grad


def test_reduced_chi2_is_one_for_data_at_noise_level():
    a = torch.eye(20000, dtype=torch.float64)[:, :1] * 0  # operator ignoring x
    op = MatrixOperator(a)
    noise = GaussianNoise(0.7)
    y = noise.sample(torch.zeros(1, 20000, dtype=torch.float64), generator=g)
    prob = InverseProblem(op, noise, y)
    assert float(prob.reduced_chi2(torch.zeros(1, 1, dtype=torch.float64))) == pytest.approx(
        1, abs=0.03
    )


def test_bad_inputs_raise_clear_errors():
    prob, a, y = _problem()
    op = prob.operator
    with pytest.raises(ValueError, match="^y: contains NaN"):
        InverseProblem(op, GaussianNoise(1.0), torch.tensor([[float("nan")] * 6]))
    with pytest.raises(ValueError, match="^y: expected shape"):
        InverseProblem(op, GaussianNoise(1.0), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="noise"):
        InverseProblem(op, object(), y)
    with pytest.raises(ValueError, match="operator"):
        InverseProblem("not an operator", GaussianNoise(1.0), y)
    with pytest.raises(ValueError, match="x: operator output"):
        crop = ElementwiseOperator(lambda x: x.reshape(x.shape[0], -1)[:, :5])  # no out_shape
        InverseProblem(
            crop, GaussianNoise(1.0), torch.zeros(1, 6), image_shape=(9,)
        ).log_likelihood(torch.zeros(1, 9, dtype=torch.float64))


def test_y_without_batch_dimension_is_accepted():
    prob, a, y = _problem()
    p2 = InverseProblem(prob.operator, prob.noise, y[0])
    assert p2.y.shape == (1, 6)
    assert p2.is_linear_gaussian and p2.sigma == 0.4
