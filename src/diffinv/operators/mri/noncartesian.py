"""Non-Cartesian multi-coil MRI: coil sensitivities followed by a NUFFT onto a trajectory."""

from __future__ import annotations

import math

import torch

from ..base import LinearOperator
from ..noise import check_finite
from ._checks import as_complex, check_image, check_maps
from .nufft import NufftBackend, make_backend

__all__ = ["NonCartesianMRI", "check_trajectory"]


def check_trajectory(trajectory: torch.Tensor) -> torch.Tensor:
    """Validate a ``(K, 2)`` trajectory in radians per pixel within ``[-pi, pi)``."""
    if not isinstance(trajectory, torch.Tensor):
        trajectory = torch.as_tensor(trajectory)
    if trajectory.is_complex() or trajectory.ndim != 2 or trajectory.shape[1] != 2:
        raise ValueError(
            f"trajectory: expected a real (K, 2) tensor in radians/pixel, got "
            f"{tuple(trajectory.shape)} {trajectory.dtype}"
        )
    check_finite("trajectory", trajectory)
    lim = math.pi * (1 + 1e-6)
    if bool((trajectory < -lim).any()) or bool((trajectory >= lim).any()):
        raise ValueError(
            "trajectory: expected frequencies in radians/pixel within [-pi, pi); convert sigpy "
            "coordinates (k-space samples) with omega = 2 pi coord / N"
        )
    if not trajectory.is_floating_point():
        trajectory = trajectory.to(torch.float64)
    return trajectory


class NonCartesianMRI(LinearOperator):
    r"""Multi-coil MRI sampled on an arbitrary k-space trajectory.

    .. math::
        y_{c,j} = \frac{1}{\sqrt{HW}} \sum_n S_c[n]\, x[n]\,
        e^{-i\, \omega_j \cdot (n - \lfloor N/2 \rfloor)}

    for coil ``c`` and k-space point ``omega_j`` (radians per pixel, rows then columns, in
    ``[-pi, pi)``).  At Cartesian grid frequencies ``omega = 2 pi k / N`` this reproduces
    :class:`~diffinv.operators.mri.MultiCoilMRI`.  sigpy's ``coord`` (in k-space samples) maps
    as ``coord = omega * N / (2 pi)``.

    The adjoint is the exact adjoint of the implemented forward (the backend's type-1
    transform); :meth:`normal` uses the Toeplitz embedding (Fessler et al. 2005, IEEE TSP
    53:3393; Wajer & Pruessmann 2001): ``A^H A x = sum_c conj(S_c) P^T F^{-1} T F P (S_c x)``
    with ``P`` zero-padding to ``2H x 2W`` and a real kernel ``T`` computed once, which costs
    two oversampled FFTs per coil instead of two NUFFTs and equals the exact-DFT normal
    operator up to the backend accuracy.  :meth:`density_compensation` gives Pipe-Menon
    weights for gridding reconstructions ``A^H (w * y)``.

    Parameters
    ----------
    coil_maps : torch.Tensor, optional
        Complex ``(coils, H, W)``; ``None`` for single-coil (then ``shape`` is required).
    trajectory : torch.Tensor
        ``(K, 2)`` real frequencies in radians per pixel.
    shape : tuple of int, optional
        Image shape ``(H, W)`` for single-coil operators.
    backend : str
        NUFFT backend, see :mod:`diffinv.operators.mri.nufft` (default ``"auto"``).
    eps : float, optional
        finufft accuracy.
    toeplitz : bool
        Use the Toeplitz normal operator in :meth:`normal` (default True).

    Notes
    -----
    Input ``(batch, 1, H, W)`` complex; output ``(batch, coils, K)`` complex.  Gradients flow
    to the image and the coil maps with every backend (finufft through an autograd function
    whose backward is the exact adjoint), not to the trajectory.
    """

    def __init__(
        self,
        coil_maps: torch.Tensor | None = None,
        trajectory: torch.Tensor | None = None,
        shape: tuple[int, int] | None = None,
        backend: str = "auto",
        eps: float | None = None,
        toeplitz: bool = True,
    ):
        if trajectory is None:
            raise ValueError("trajectory: expected a (K, 2) tensor in radians/pixel, got None")
        maps = check_maps(coil_maps)
        if maps is None and shape is None:
            raise ValueError("shape: expected (H, W) for a single-coil operator (no coil_maps)")
        img_shape = tuple(maps.shape[-2:]) if maps is not None else tuple(int(s) for s in shape)
        if shape is not None and tuple(shape) != img_shape:
            raise ValueError(f"shape: expected {img_shape} to match coil_maps, got {tuple(shape)}")
        self.coil_maps = maps
        self.trajectory = check_trajectory(trajectory)
        self.image_shape = img_shape
        self.backend_name = backend
        self.eps = eps
        self.toeplitz = bool(toeplitz)
        self.backend: NufftBackend = make_backend(backend, self.trajectory, img_shape, eps)
        n_coils = 1 if maps is None else maps.shape[0]
        self.in_shape = (1, *img_shape)
        self.out_shape = (n_coils, self.trajectory.shape[0])
        self._kernel: dict = {}

    @property
    def n_coils(self) -> int:
        """Number of receive coils."""
        return self.out_shape[0]

    def to(self, device: torch.device | str) -> NonCartesianMRI:
        """Move maps and trajectory to ``device`` and rebuild the NUFFT backend there."""
        super().to(device)
        self.backend = make_backend(self.backend_name, self.trajectory, self.image_shape, self.eps)
        self._kernel = {}
        return self

    def _maps(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.coil_maps is None:
            return None
        return self.coil_maps.to(dtype=like.dtype, device=like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H, W)`` -> ``(batch, coils, K)``."""
        x = check_image(x, self.image_shape)
        maps = self._maps(x)
        return self.backend.forward(x if maps is None else x * maps)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, coils, K)`` -> ``(batch, 1, H, W)``."""
        y = as_complex(y)
        if y.ndim != 3 or tuple(y.shape[1:]) != self.out_shape:
            raise ValueError(
                f"y: expected shape (batch, {self.out_shape[0]}, {self.out_shape[1]}), got "
                f"{tuple(y.shape)}"
            )
        img = self.backend.adjoint(y)
        maps = self._maps(img)
        return img if maps is None else (maps.conj() * img).sum(dim=1, keepdim=True)

    # -- Toeplitz normal operator -------------------------------------------------------------
    def toeplitz_kernel(self, dtype: torch.dtype = torch.complex128,
                        device: torch.device | str | None = None) -> torch.Tensor:
        """FFT of the point-spread function of ``A^H A`` on the ``2H x 2W`` grid (real).

        ``h[m] = (1 / HW) sum_j exp(i omega_j . m)`` for ``m`` in ``[-H, H) x [-W, W)``,
        evaluated with the backend's adjoint on the doubled grid and circularly arranged.
        """
        device = torch.device(device) if device is not None else self.trajectory.device
        key = (dtype, str(device))
        if key not in self._kernel:
            h_, w_ = self.image_shape
            big = make_backend(self.backend_name, self.trajectory.to(device), (2 * h_, 2 * w_),
                               self.eps)
            ones = torch.ones(1, self.trajectory.shape[0], dtype=dtype, device=device)
            with torch.no_grad():
                psf = big.adjoint(ones)[0] * (2.0 / math.sqrt(h_ * w_))
            psf = torch.fft.ifftshift(psf, dim=(-2, -1))
            self._kernel[key] = torch.fft.fft2(psf).real
        return self._kernel[key]

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``A^H A x`` by the Toeplitz embedding (or adjoint of forward if ``toeplitz=False``)."""
        if not self.toeplitz:
            return self.adjoint(self.forward(x))
        x = check_image(x, self.image_shape)
        h_, w_ = self.image_shape
        kernel = self.toeplitz_kernel(x.dtype, x.device).to(x.real.dtype)
        maps = self._maps(x)
        # one image at a time: the 2H x 2W coil stack of a whole batch falls out of cache
        # and the batch then costs more per image (benchmarks/README.md, "Batches")
        out = []
        for image in x.split(1):
            coil = image if maps is None else image * maps
            spectrum = torch.fft.fft2(coil, s=(2 * h_, 2 * w_)) * kernel
            blurred = torch.fft.ifft2(spectrum)[..., :h_, :w_]
            out.append(blurred if maps is None
                       else (maps.conj() * blurred).sum(dim=1, keepdim=True))
        return torch.cat(out)

    # -- density compensation ------------------------------------------------------------------
    def density_compensation(self, n_iter: int = 20) -> torch.Tensor:
        r"""Pipe-Menon iterative density compensation weights ``(K,)`` (real, > 0).

        Iterates ``w <- w / (G T G^H w)`` (Pipe & Menon 1999, MRM 41:179) where ``G`` is the
        single-coil NUFFT of this trajectory and ``T`` the separable triangle window
        ``(1 - |n| / (N/2))_+`` in the image domain, so that ``G T G^H`` is convolution in
        k-space with a non-negative Fejer kernel (about two samples wide): the positive
        kernel the iteration needs to converge (the bare ``G G^H``, a Dirichlet kernel with
        negative lobes, diverges).  Weights are scaled so that the gridding reconstruction
        ``G^H (w * G x)`` of a constant image is 1 at the image centre.  Use as
        ``x_grid = A^H (w * y)``.
        """
        if n_iter < 1:
            raise ValueError(f"n_iter: expected a positive integer, got {n_iter!r}")
        traj = self.trajectory
        cdtype = torch.complex128 if traj.dtype == torch.float64 else torch.complex64
        rdtype = torch.float64 if cdtype == torch.complex128 else torch.float32
        windows = []
        for n in self.image_shape:
            idx = torch.arange(n, dtype=rdtype, device=traj.device) - n // 2
            windows.append((1.0 - idx.abs() / (n / 2)).clamp(min=0.0))
        window = windows[0][:, None] * windows[1][None, :]
        w = torch.ones(1, traj.shape[0], dtype=cdtype, device=traj.device)
        with torch.no_grad():
            for _ in range(n_iter):
                density = self.backend.forward(window * self.backend.adjoint(w)).real
                w = w / density.clamp(min=1e-12 * float(density.max()))
            ones = torch.ones(1, *self.image_shape, dtype=cdtype, device=traj.device)
            grid = self.backend.adjoint(w * self.backend.forward(ones))
            w = w / grid[0, self.image_shape[0] // 2, self.image_shape[1] // 2].real
        return w[0].real.clone()

    def __repr__(self) -> str:
        return (
            f"NonCartesianMRI(coils={self.n_coils}, shape={self.image_shape}, "
            f"K={self.out_shape[1]}, backend={self.backend.name})"
        )
