"""``push_forward`` and ``image_space``: a posterior sampled on a latent vector, reported on
the images of its samples."""

from __future__ import annotations

import pytest
import torch

from diffinv import Posterior
from diffinv.demos.registry import Demo, LatentImages, image_space
from diffinv.operators import GaussianNoise, InverseProblem, LogNormalField
from diffinv.operators.elementary import MatrixOperator
from diffinv.sampling import push_forward


def _problems():
    g = torch.Generator().manual_seed(0)
    field = LogNormalField(torch.full((1, 3, 3), 0.1, dtype=torch.float64), 1.0, 1.5)
    a = MatrixOperator(torch.randn(5, 9, generator=g, dtype=torch.float64), in_shape=(1, 3, 3))
    noise = GaussianNoise(0.01)
    truth = field(torch.randn(1, 9, generator=g, dtype=torch.float64))
    y = noise.sample(a(truth), generator=g)
    images = InverseProblem(a, noise, y)
    latent = InverseProblem(a @ field, noise, y, image_shape=(9,))
    return field, images, latent


def _latent_posterior():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(200, 9, generator=g, dtype=torch.float64)
    w = torch.rand(200, generator=g, dtype=torch.float64)
    stale = {"solver": "smc", "reduced_chi2_mean": 99.0, "warnings": ["range: stale"],
             "ess_per_step": [150.0, 120.0]}
    return Posterior(z, w, stale, {"solver": "smc"})


def test_push_forward_takes_summaries_over_the_images_of_the_samples():
    field, images, latent = _problems()
    post = _latent_posterior()
    out = push_forward(post, field, images, physical_range=(0.0, float("inf")), units="Jy")
    x = field(post.samples)
    assert out.samples.shape == (200, 1, 3, 3)
    torch.testing.assert_close(out.samples, x)
    torch.testing.assert_close(out.weights, post.weights)
    mean = (post.weights[:, None, None, None] * x).sum(0)
    torch.testing.assert_close(out.mean, mean)
    # the image of the mean white noise (a log-normal median) is well below the mean image
    median = field((post.weights[:, None] * post.samples).sum(0, keepdim=True))[0]
    assert float(mean.sum()) > 1.3 * float(median.sum())
    d = out.diagnostics
    assert d["reduced_chi2_mean"] == pytest.approx(float(images.reduced_chi2(mean[None])[0]))
    # per-sample chi^2 is the same in both frames (forward(z) = A field(z))
    torch.testing.assert_close(torch.tensor(d["reduced_chi2"], dtype=torch.float64),
                               latent.reduced_chi2(post.samples).to(torch.float64))
    assert d["ess_per_step"] == [150.0, 120.0]  # the sampler's own diagnostics are kept
    assert "range: stale" not in d["warnings"] and out.metadata["latent_shape"] == [9]
    assert post.samples.shape == (200, 9)  # the input is not modified


def test_push_forward_warns_on_the_images_and_checks_the_field():
    field, images, _ = _problems()
    post = _latent_posterior()
    out = push_forward(post, field, images, physical_range=(0.0, 0.01), units="Jy")
    assert any(m.startswith("range") and "above the physical maximum 0.01 Jy" in m
               for m in out.diagnostics["warnings"])
    with pytest.raises(ValueError, match="field: mapped"):
        push_forward(post, lambda z: z, images)


def test_image_space_maps_latent_demos_and_leaves_others():
    field, images, latent = _problems()
    post = _latent_posterior()
    plain = Demo(images, prior=lambda x, s: x, x_true=None, description="images")
    assert image_space(post, plain) == (post, plain)
    z_true = torch.zeros(1, 9, dtype=torch.float64)
    demo = Demo(latent, prior=lambda x, s: x, x_true=z_true, description="latent",
                metadata={"units": "Jy"},
                latent=LatentImages(field, images, (0.0, float("inf"))))
    out, image_demo = image_space(post, demo)
    assert out.samples.shape == (200, 1, 3, 3) and image_demo.latent is None
    assert image_demo.problem is images and image_demo.metadata["physical_range"] == (
        0.0, float("inf"))
    torch.testing.assert_close(image_demo.x_true, field(z_true))
    assert image_demo.to_image(out.samples).shape == (200, 3, 3)
    assert "physical_range" not in demo.metadata and demo.latent is not None  # not modified
