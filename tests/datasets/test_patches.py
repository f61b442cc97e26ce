"""Natural patches from the scikit-image bundled images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("skimage")

from diffinv.datasets.patches import (  # noqa: E402
    TEST_IMAGES,
    TRAIN_IMAGES,
    natural_patches,
    source_image,
)


def test_patches_shape_range_and_reproducibility():
    a = natural_patches(20, 16, torch.Generator().manual_seed(0))
    b = natural_patches(20, 16, torch.Generator().manual_seed(0))
    c = natural_patches(20, 16, torch.Generator().manual_seed(1))
    assert a.shape == (20, 1, 16, 16) and a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_splits_use_disjoint_source_images():
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    test = natural_patches(5, 8, torch.Generator().manual_seed(0), split="test",
                           dtype=torch.float64)
    # every test patch occurs verbatim in one of the test images, none in a training image
    def found_in(patch, names):
        for name in names:
            img = source_image(name).numpy()
            for i, j in zip(*np.nonzero(img[:-7, :-7] == patch[0, 0])):
                if np.array_equal(img[i:i + 8, j:j + 8], patch):
                    return True
        return False

    for patch in test[:, 0].numpy():
        assert found_in(patch, TEST_IMAGES)
        assert not found_in(patch, TRAIN_IMAGES)


def test_source_image_greyscale_and_downsample():
    cam = source_image("camera")
    np.testing.assert_allclose(cam.numpy(), _skimage_camera())
    small = source_image("camera", downsample=2)
    assert small.shape == (256, 256)
    torch.testing.assert_close(small[0, 0], cam[:2, :2].mean())
    rgb = source_image("astronaut")
    assert rgb.ndim == 2 and float(rgb.min()) == 0.0 and float(rgb.max()) == 1.0


def _skimage_camera():
    import skimage.data

    img = skimage.data.camera().astype(np.float64) / 255.0
    return (img - img.min()) / (img.max() - img.min())


def test_min_std_and_bad_arguments():
    p = natural_patches(10, 8, torch.Generator().manual_seed(0), min_std=0.05)
    assert float(p.reshape(10, -1).std(1).min()) >= 0.05
    with pytest.raises(ValueError, match="split"):
        natural_patches(2, 8, split="validation")
    with pytest.raises(ValueError, match="images"):
        natural_patches(2, 8, images=("no_such_image",))
    with pytest.raises(ValueError, match="patch_size"):
        natural_patches(2, 1000)
