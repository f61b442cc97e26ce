"""The same correctness checks on an accelerator as on the CPU (issue 18: "CUDA timings ...
with the same correctness checks on the device").

Every test takes a ``device`` from ``DIFFINV_TEST_DEVICES`` (comma-separated, default
``cuda``); a device that torch cannot use is skipped, so on a machine without a GPU the
whole module skips.  ``DIFFINV_TEST_DEVICES=cpu`` runs the same checks on the CPU, which is
how the checks themselves are tested where there is no GPU.

Each operator is compared with its CPU result in float64 and passes the shared adjoint
test on the device; a sampler on the device reproduces the exact Gaussian posterior; the
training loop runs a few steps with bf16 autocast (on CUDA) and writes a prior that loads.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

import diffinv
from diffinv.operators import InverseProblem
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.noise import GaussianNoise
from diffinv.operators.testing import check_adjoint
from diffinv.testing.checks import random_gaussian_prior, whitened_moment_errors

ADJOINT_TOL = 1e-6  # = tests/conftest.py ADJOINT_TOL (operators/testing.py, check_adjoint)
DEVICES = [d.strip() for d in os.environ.get("DIFFINV_TEST_DEVICES", "cuda").split(",")
           if d.strip()]


def usable(device: str) -> bool:
    """True when torch can allocate on ``device``."""
    kind = torch.device(device).type
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return False


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    if not usable(request.param):
        pytest.skip(f"device {request.param!r} not available")
    return request.param


def same_on_device(op, x: torch.Tensor, device: str, atol: float = 1e-9) -> None:
    """``op`` on ``device`` equals ``op`` on the CPU for ``x`` and for its adjoint."""
    y = op(x)
    op_dev = op.to(device)
    y_dev = op_dev(x.to(device))
    assert y_dev.device.type == torch.device(device).type
    scale = float(y.abs().max())
    assert float((y_dev.cpu() - y).abs().max()) <= atol * scale
    back = op_dev.adjoint(y.to(device)).cpu()
    op_cpu = op.to("cpu")
    ref = op_cpu.adjoint(y)
    assert float((back - ref).abs().max()) <= atol * float(ref.abs().max())
    op.to(device)


def test_ct_parallel_and_fan_beam(device):
    from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon

    angles = torch.linspace(0, math.pi, 19, dtype=torch.float64)[:-1]
    x = torch.rand(2, 1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for op in (ParallelBeamRadon(24, angles, n_detectors=24),
               FanBeamRadon(24, torch.arange(20, dtype=torch.float64) * (2 * math.pi / 20),
                            source_origin=48.0, origin_detector=24.0, n_detectors=40,
                            detector_spacing=1.0)):
        same_on_device(op, x, device)
        assert check_adjoint(op.to(device), (2, 1, 24, 24), torch.float64,
                             device=device) < ADJOINT_TOL
        y = op.to("cpu")(x)
        fbp = op.to("cpu").fbp(y)
        assert torch.allclose(op.to(device).fbp(y.to(device)).cpu(), fbp, atol=1e-8)


def test_cartesian_multicoil_mri(device):
    from diffinv.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask

    maps = birdcage_maps((32, 32), 4, dtype=torch.complex128)
    op = MultiCoilMRI(maps, cartesian_mask((32, 32), 4, 0.1, seed=0))
    g = torch.Generator().manual_seed(1)
    x = torch.complex(torch.randn(2, 1, 32, 32, generator=g, dtype=torch.float64),
                      torch.randn(2, 1, 32, 32, generator=g, dtype=torch.float64))
    same_on_device(op, x, device)
    assert check_adjoint(op.to(device), (2, 1, 32, 32), torch.complex128,
                         device=device) < ADJOINT_TOL
    assert torch.allclose(op.normal(x.to(device)).cpu(), op.to("cpu").adjoint(op(x)),
                          atol=1e-10)


def test_noncartesian_mri_torchkbnufft(device):
    pytest.importorskip("torchkbnufft")
    from diffinv.operators.mri import NonCartesianMRI, birdcage_maps, radial_trajectory

    maps = birdcage_maps((16, 16), 2, dtype=torch.complex128)
    traj = radial_trajectory(9, 16)
    exact = NonCartesianMRI(maps, traj, backend="dft", toeplitz=False)
    op = NonCartesianMRI(maps, traj, backend="torchkbnufft").to(device)
    g = torch.Generator().manual_seed(2)
    x = torch.complex(torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64),
                      torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64))
    ref = exact(x)
    got = op(x.to(device)).cpu()
    assert float((got - ref).norm() / ref.norm()) < 1e-2  # Kaiser-Bessel interpolation
    assert check_adjoint(op, (2, 1, 16, 16), torch.complex128, device=device) < 1e-6
    ref_n = exact.normal(x)
    got_n = op.normal(x.to(device)).cpu()
    assert float((got_n - ref_n).norm() / ref_n.norm()) < 1e-2
    exact_dev = NonCartesianMRI(maps, traj, backend="dft", toeplitz=False).to(device)
    assert float((exact_dev(x.to(device)).cpu() - ref).abs().max()) < 1e-9 * float(
        ref.abs().max())


def test_interferometry_visibilities(device):
    from diffinv.operators.interferometry import Array, Observation, Visibilities

    obs = Observation.simulate(Array.eht2017(), 187.7059, 12.3911, "2017-04-05",
                               integration_s=60.0, scan_interval_s=600.0)
    op = Visibilities(obs, 16, 160.0, method="dft")
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    same_on_device(op, x, device)
    assert check_adjoint(op.to(device), (2, 1, 16, 16), torch.float64,
                         device=device) < ADJOINT_TOL


def test_coded_diffraction(device):
    from diffinv.operators.phase_retrieval import CodedDiffraction

    op = CodedDiffraction(16, n_masks=3, seed=0)
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    want = op(x)
    got = op.to(device)(x.to(device)).cpu()
    assert float((got - want).abs().max()) <= 1e-10 * float(want.abs().max())


def test_daps_on_device_matches_exact_gaussian_posterior(device):
    prior, g = random_gaussian_prior((6,), seed=5)
    op = MatrixOperator(torch.randn(3, 6, generator=g, dtype=torch.float64) / math.sqrt(6))
    y = GaussianNoise(0.3).sample(op(prior.sample(1, g)), g)
    problem = InverseProblem(op, GaussianNoise(0.3), y)
    post = prior.posterior(problem)
    run = diffinv.sample(problem.to(device), prior.to(device), "daps", n_samples=2000,
                         steps=200, dtype=torch.float64, ode_steps=1, seed=0, progress=False)
    assert run.samples.device.type == torch.device(device).type
    e = whitened_moment_errors(run.samples, post.mean, post.cov)
    # DAPS's documented bias at 200 levels (tests/solvers/test_daps.py) + 3 Monte-Carlo sd
    assert e["mean_error"] < 0.1 + 3 * e["mean_mc"], e
    assert e["cov_error"] < 0.2 + 3 * e["cov_mc"], e


def test_mcgdiff_implicit_fourier_basis_on_device(device):
    # masked Fourier: the circulant set-up through the operator on the device, an implicit
    # basis moved there, and MCGdiff on the device against the exact Gaussian posterior
    from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
    from diffinv.solvers.smc.svd_likelihood import SVDLikelihood

    prior, g = random_gaussian_prior((1, 8, 8), seed=6)
    op = MultiCoilMRI(mask=cartesian_mask((8, 8), 2, 0.25, seed=0))
    y = GaussianNoise(0.2).sample(op(prior.sample(1, g)), g)
    problem = InverseProblem(op, GaussianNoise(0.2), y)
    cpu = SVDLikelihood.from_problem(problem, (1, 8, 8))
    dev = SVDLikelihood.on_device(problem.to(device), (1, 8, 8))
    assert cpu.factorisation == dev.factorisation == "circulant"
    assert torch.allclose(dev.ybar.cpu(), cpu.ybar, atol=1e-10)
    assert torch.allclose(dev.rho2.cpu(), cpu.rho2, rtol=1e-10)
    assert abs(dev.log_const - cpu.log_const) <= 1e-9 * abs(cpu.log_const)
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64, generator=g)
    assert torch.allclose(dev.coords(x.to(device)).cpu(), cpu.coords(x), atol=1e-12)
    post = prior.posterior(problem)
    run = diffinv.sample(problem.to(device), prior.to(device), "smc", n_samples=2000,
                         steps=50, method="mcgdiff", dtype=torch.float64, seed=0,
                         progress=False)
    assert run.samples.device.type == torch.device(device).type
    assert run.diagnostics["factorisation"] == "circulant"
    w = run.weights.to(torch.float64).cpu()
    idx = torch.multinomial(w, 2000, replacement=True, generator=g)
    e = whitened_moment_errors(run.samples.cpu()[idx].reshape(2000, -1),
                               post.mean.reshape(-1), post.cov)
    assert e["mean_error"] < 0.1 + 3 * e["mean_mc"], e
    assert e["cov_error"] < 0.2 + 3 * e["cov_mc"], e


def test_training_steps_bf16_and_prior_loads(device, tmp_path):
    from diffinv.priors.checkpoints import load_prior
    from diffinv.priors.training import TrainConfig, train

    cfg = TrainConfig(dataset="disks", image_size=16, steps=8, batch_size=8, lr=2e-3, warmup=2,
                      pool_size=32, pool_refresh=4, checkpoint_every=4, log_every=2,
                      ema_half_life=5.0, eval_images=8, grid_images=4,
                      unet={"base_width": 8, "width_mults": [1, 2], "emb_dim": 16,
                            "attention": True})
    prior = train(cfg, tmp_path, device=device, progress=False)
    assert next(prior.net.parameters()).device.type == torch.device(device).type
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 8
    assert all(math.isfinite(e["loss"]) for e in state["log"])
    loaded = load_prior(tmp_path / "prior.pt").to(device)
    x = torch.randn(2, 1, 24, 20, device=device)  # not the training size: size-agnostic
    with torch.no_grad():
        out = loaded(x, torch.full((2,), 0.5, device=device))
    assert out.shape == x.shape and bool(torch.isfinite(out).all())


def test_push_forward_with_the_field_on_the_device(device):
    """A latent (log-normal) problem moved to the device, as a study worker does: its CPU
    posterior is mapped through the field there and comes back as CPU images."""
    from diffinv import Posterior
    from diffinv.operators import LogNormalField
    from diffinv.sampling import push_forward

    g = torch.Generator().manual_seed(0)
    field = LogNormalField(torch.full((1, 3, 3), 0.1, dtype=torch.float64), 1.0, 1.5)
    a = MatrixOperator(torch.randn(5, 9, generator=g, dtype=torch.float64), in_shape=(1, 3, 3))
    noise = GaussianNoise(0.01)
    images = InverseProblem(a, noise, noise.sample(a(field(torch.zeros(1, 9,
                            dtype=torch.float64))), generator=g))
    z = torch.randn(6, 9, generator=g, dtype=torch.float64)
    reference = push_forward(Posterior(z), field, images)
    images.to(device)
    field.to(device)
    out = push_forward(Posterior(z), field, images)
    assert out.samples.device.type == "cpu"
    torch.testing.assert_close(out.samples, reference.samples)
    assert out.diagnostics["reduced_chi2_mean"] == pytest.approx(
        reference.diagnostics["reduced_chi2_mean"], rel=1e-9)
