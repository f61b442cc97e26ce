"""Natural-image patches from the images bundled inside the scikit-image wheel.

The images below ship as files in ``skimage/data`` (no download, no network); they are
converted to grey levels in ``[0, 1]`` and cut into random square patches.  Training and
held-out patches come from *different source images*, so a prior fitted on the
``"train"`` split is evaluated on scenes it has never seen.

==========  ====================================================================
split       source images (``skimage.data`` names)
==========  ====================================================================
train       astronaut, brick, camera, coins, grass, gravel, moon, page
test        cell, chelsea, coffee, text
==========  ====================================================================

scikit-image is imported lazily (it is a development dependency of diffinv); a missing
install raises an ``ImportError`` saying how to get it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from ..extras import require

__all__ = ["natural_patches", "source_image", "TRAIN_IMAGES", "TEST_IMAGES", "SPLITS"]

TRAIN_IMAGES: tuple[str, ...] = (
    "astronaut", "brick", "camera", "coins", "grass", "gravel", "moon", "page",
)
TEST_IMAGES: tuple[str, ...] = ("cell", "chelsea", "coffee", "text")
SPLITS = {"train": TRAIN_IMAGES, "test": TEST_IMAGES}


def _skimage_data():
    return require("skimage.data", purpose="natural image patches (scikit-image's bundled images)")


@cache
def _load(name: str) -> np.ndarray:
    data = _skimage_data()
    fn = getattr(data, name, None)
    if fn is None:
        raise ValueError(f"images: unknown skimage.data image {name!r}")
    raw = np.asarray(fn())
    img = raw.astype(np.float64) / (255.0 if raw.dtype == np.uint8 else 1.0)
    if img.ndim == 3:  # RGB(A) -> luminance (ITU-R BT.709 weights, as skimage.color.rgb2gray)
        img = img[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    img.setflags(write=False)
    return img


def source_image(name: str, downsample: int = 1) -> torch.Tensor:
    """One bundled image as a float64 ``(H, W)`` tensor in ``[0, 1]``.

    ``downsample`` averages ``k x k`` pixel blocks (more structure per patch pixel).
    """
    if int(downsample) != downsample or downsample < 1:
        raise ValueError(f"downsample: expected a positive integer, got {downsample!r}")
    img = torch.from_numpy(_load(name).copy())
    if downsample > 1:
        k = int(downsample)
        h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
        img = img[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))
    return img


def natural_patches(
    n: int,
    patch_size: int,
    generator: torch.Generator | None = None,
    *,
    split: str = "train",
    images: tuple[str, ...] | None = None,
    downsample: int = 1,
    min_std: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random square patches of bundled natural images.

    Parameters
    ----------
    n : int
        Number of patches.
    patch_size : int
        Side ``P`` in pixels.
    generator : torch.Generator, optional
        Drives the choice of source image and position (CPU generator); the same seed gives
        the same patches.
    split : {"train", "test"}
        Which source images (see the module docstring); ignored if ``images`` is given.
    images : tuple of str, optional
        Explicit ``skimage.data`` image names.
    downsample : int
        Block-average factor applied to the source images first.
    min_std : float
        Reject (and redraw) patches whose pixel standard deviation is below this (drops
        flat sky/background patches); at most ``50 n`` draws are tried.
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        ``(n, 1, P, P)`` grey levels in ``[0, 1]`` on the CPU.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    if int(patch_size) != patch_size or patch_size < 1:
        raise ValueError(f"patch_size: expected a positive integer, got {patch_size!r}")
    if images is None:
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
        images = SPLITS[split]
    srcs = [source_image(name, downsample) for name in images]
    p = int(patch_size)
    if any(min(s.shape) < p for s in srcs):
        raise ValueError(f"patch_size: {p} is larger than a source image")
    out: list[torch.Tensor] = []
    drawn = 0
    while len(out) < n:
        if drawn >= 50 * n:
            raise ValueError(f"min_std: too few patches with std >= {min_std}; lower it")
        m = n - len(out)
        drawn += m
        ks = torch.randint(len(srcs), (m,), generator=generator)
        u = torch.rand(m, 2, dtype=torch.float64, generator=generator)
        for k, (ui, uj) in zip(ks.tolist(), u.tolist()):
            src = srcs[k]
            i = int(ui * (src.shape[0] - p + 1))
            j = int(uj * (src.shape[1] - p + 1))
            patch = src[i:i + p, j:j + p]
            if min_std > 0 and float(patch.std()) < min_std:
                continue
            out.append(patch)
    return torch.stack(out)[:, None].to(dtype)
