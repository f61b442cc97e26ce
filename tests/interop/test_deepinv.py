"""deepinv interop both ways (deepinv is installed in CI: these tests must run, not skip)."""

import deepinv as dinv
import pytest
import torch

from diffinv.interop.deepinv import (
    DeepinvLinearOperator,
    from_deepinv,
    problem_from_deepinv,
    to_deepinv,
)
from diffinv.operators.elementary import ElementwiseOperator, MatrixOperator, RealToComplex
from diffinv.operators.noise import GaussianNoise, PoissonNoise
from diffinv.operators.testing import check_adjoint
from diffinv.priors import GaussianPrior

ADJOINT_TOL = 1e-6


def _matrix_op(m=10, shape=(1, 3, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    n = 12
    return MatrixOperator(torch.randn(m, n, generator=g, dtype=torch.float64), in_shape=shape)


def test_our_operator_as_deepinv_linear_physics():
    op = _matrix_op()
    physics = to_deepinv(op, GaussianNoise(0.1))
    assert isinstance(physics, dinv.physics.LinearPhysics)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randn(2, 10, generator=g, dtype=torch.float64)
    # independent dot-product test through the deepinv interface
    lhs = (physics.A(x) * y).sum()
    rhs = (x * physics.A_adjoint(y)).sum()
    assert float(abs(lhs - rhs) / (x.norm() * y.norm() * torch.linalg.matrix_norm(
        op.matrix, 2))) < ADJOINT_TOL
    # deepinv's own adjointness test
    assert abs(float(physics.adjointness_test(x))) < 1e-8
    torch.testing.assert_close(physics.A(x), op(x))
    # physics(x) adds deepinv Gaussian noise of our sigma
    noisy = torch.stack([physics(x) - op(x) for _ in range(200)])
    assert float(noisy.std()) == pytest.approx(0.1, rel=0.05)
    # deepinv's least-squares solver works on our operator
    x_ls = physics.A_dagger(op(x))
    torch.testing.assert_close(op(x_ls), op(x), rtol=1e-4, atol=1e-4)


def test_complex_operator_round_trip():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, generator=g, dtype=torch.complex128)
    op = MatrixOperator(a, in_shape=(1, 2, 2)) @ RealToComplex()
    physics = to_deepinv(op)
    back = from_deepinv(physics)
    assert back is op
    assert check_adjoint(DeepinvLinearOperator(physics), (3, 2, 2, 2)) < ADJOINT_TOL


def test_nonlinear_operator_as_physics():
    op = ElementwiseOperator(lambda z: z**2, "square") @ _matrix_op()
    physics = to_deepinv(op, PoissonNoise(gain=0.5))
    assert not isinstance(physics, dinv.physics.LinearPhysics)
    x = torch.randn(2, 1, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(physics.A(x), op(x))
    y = physics(x)
    # gain 0.5 Poisson counts: values are multiples of the gain
    torch.testing.assert_close(y / 0.5, torch.round(y / 0.5))


@pytest.mark.parametrize("make", ["blur", "inpainting", "cs", "downsampling"])
def test_deepinv_physics_passes_our_adjoint_test(make):
    g = torch.Generator().manual_seed(0)
    shape = (1, 8, 8)
    if make == "blur":
        filt = dinv.physics.functional.blur.gaussian_blur(sigma=(1.0, 1.0)).to(torch.float64)
        physics = dinv.physics.BlurFFT(img_size=shape, filter=filt)
    elif make == "inpainting":
        physics = dinv.physics.Inpainting(img_size=shape, mask=0.6, rng=g)
    elif make == "cs":
        physics = dinv.physics.CompressedSensing(m=20, img_size=shape, dtype=torch.float64,
                                                 rng=g)
    else:
        filt = dinv.physics.functional.blur.gaussian_blur(sigma=(0.8, 0.8)).to(torch.float64)
        physics = dinv.physics.Downsampling(img_size=shape, filter=filt, factor=2)
    op = from_deepinv(physics, in_shape=shape)
    assert op.is_linear
    assert check_adjoint(op, (2, *shape), dtype=torch.float64) < ADJOINT_TOL


def test_problem_from_deepinv_runs_our_sampler():
    import diffinv

    g = torch.Generator().manual_seed(3)
    shape = (1, 4, 4)
    physics = dinv.physics.Inpainting(img_size=shape, mask=0.5, rng=g,
                                      noise_model=dinv.physics.GaussianNoise(sigma=0.1))
    prior = GaussianPrior(torch.zeros(shape, dtype=torch.float64),
                          torch.eye(16, dtype=torch.float64))
    x = prior.sample(1, generator=g)
    y = physics.A(x.float()).double() + 0.1 * torch.randn(1, *shape, generator=g,
                                                          dtype=torch.float64)
    problem = problem_from_deepinv(physics, y, image_shape=shape)
    assert isinstance(problem.noise, GaussianNoise) and problem.noise.sigma == pytest.approx(0.1)
    # log-likelihood agrees with the Gaussian formula on deepinv's forward model
    # log-likelihood differences follow the Gaussian formula on deepinv's forward model
    # (deepinv stores sigma in float32, so the reference uses the sigma actually read)
    var = problem.noise.sigma**2
    r = y - physics.A(x)
    x2 = x + 0.3
    r2 = y - physics.A(x2)
    diff = float(problem.log_likelihood(x2) - problem.log_likelihood(x))
    assert diff == pytest.approx(-0.5 * float((r2**2).sum() - (r**2).sum()) / var, rel=1e-9)
    post = diffinv.sample(problem, prior, solver="dps", n_samples=2, steps=10, seed=0,
                          dtype=torch.float64)
    assert post.samples.shape == (2, *shape)
    assert torch.isfinite(post.samples).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="operator"):
        to_deepinv(lambda x: x)
    with pytest.raises(ValueError, match="physics"):
        from_deepinv(_matrix_op())
    physics = dinv.physics.Inpainting(img_size=(1, 4, 4), mask=0.5)
    with pytest.raises(ValueError, match="noise_model"):
        problem_from_deepinv(physics, torch.zeros(1, 1, 4, 4))
