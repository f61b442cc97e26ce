"""MRI forward models, sampling patterns, coil maps, noise, baselines and metrics.

Images are ``(batch, 1, H, W)`` complex64/complex128; k-space uses the orthonormal centred
FFT (:func:`fft2c`).  Operators: :class:`MultiCoilMRI` (Cartesian, SENSE) and
:class:`NonCartesianMRI` (NUFFT with exact adjoint and Toeplitz normal operator).
"""

from .cartesian import MultiCoilMRI, check_mask
from .coils import (
    birdcage_maps,
    espirit_maps,
    fully_sampled_centre,
    noise_covariance,
    prewhiten,
    rss,
    whitening_matrix,
)
from .fft import fft2c, ifft2c
from .masks import cartesian_mask, poisson_disc_mask
from .metrics import nmse, psnr, ssim
from .noise import CoilMixing, CoilNoise
from .noncartesian import NonCartesianMRI, check_trajectory
from .recon import cg_sense, gridding_recon, l1_wavelet_recon, zero_filled_rss
from .trajectories import GOLDEN_ANGLE, radial_trajectory, spiral_trajectory

__all__ = [
    "GOLDEN_ANGLE",
    "CoilMixing",
    "CoilNoise",
    "MultiCoilMRI",
    "NonCartesianMRI",
    "birdcage_maps",
    "cartesian_mask",
    "cg_sense",
    "check_mask",
    "check_trajectory",
    "espirit_maps",
    "fully_sampled_centre",
    "fft2c",
    "gridding_recon",
    "ifft2c",
    "l1_wavelet_recon",
    "nmse",
    "noise_covariance",
    "poisson_disc_mask",
    "prewhiten",
    "psnr",
    "radial_trajectory",
    "rss",
    "spiral_trajectory",
    "ssim",
    "whitening_matrix",
    "zero_filled_rss",
]
