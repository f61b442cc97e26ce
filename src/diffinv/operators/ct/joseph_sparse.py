r"""Joseph's ray-driven projector as a precomputed sparse matrix (torch, CPU and CUDA).

Joseph's method (P. M. Joseph, "An improved algorithm for reprojecting rays through pixel
images", IEEE Trans. Med. Imaging 1(3):192-196, 1982) steps along each ray one pixel at a
time along the image axis most aligned with the ray (the *driving* axis).  At the centre
line of each driving-axis pixel row (or column) the image is linearly interpolated between
the two nearest pixel centres across the ray, and the sample is weighted by the ray length
per step, :math:`\Delta / |\cos\phi|`, with :math:`\phi` the angle between ray and driving
axis:

.. math::

    (A x)_r = \frac{\Delta}{|d_{\parallel}|} \sum_{k=0}^{N-1}
        \big[(1 - f_k)\, x_{k, n_k} + f_k\, x_{k, n_k + 1}\big],\qquad
        n_k = \lfloor c_k \rfloor,\; f_k = c_k - n_k,

where :math:`c_k = a + k m` is the continuous pixel index across the ray at step ``k``
(pixels outside the image count as zero).  The result approximates the line integral
:math:`\int f\,dt` in physical units.

This module builds the matrix once per geometry as a torch sparse CSR tensor together with
its transpose, so the back-projection is the exact transpose of the projection by
construction.  :mod:`.joseph_numba` evaluates the same sums on the fly on CPU.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["ray_parameters", "build_matrix"]


def ray_parameters(
    origin: torch.Tensor, direction: torch.Tensor, image_size: int, pixel_size: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per-ray constants of Joseph's sum.

    Parameters
    ----------
    origin, direction : torch.Tensor
        float64 ``(n_rays, 2)`` point on each ray and its unit direction (physical units,
        coordinates as in :mod:`.geometry`).
    image_size : int
    pixel_size : float

    Returns
    -------
    xdrive : torch.Tensor
        bool ``(n_rays,)``: True when the ray steps along columns (``X`` is the driving axis,
        ``|d_x| >= |d_y|``), so ``k`` is the column and ``c_k`` the row index; False when it
        steps along rows (``k`` the row, ``c_k`` the column).
    a, m : torch.Tensor
        float64 ``(n_rays,)``: ``c_k = a + k m``.
    w : torch.Tensor
        float64 ``(n_rays,)``: ray length per step, ``pixel_size / |d_drive|``.
    """
    ox, oy = origin[:, 0], origin[:, 1]
    dx, dy = direction[:, 0], direction[:, 1]
    c0 = (image_size - 1) / 2
    h = float(pixel_size)
    xdrive = dx.abs() >= dy.abs()
    safe_dx = torch.where(xdrive, dx, torch.ones_like(dx))
    safe_dy = torch.where(xdrive, torch.ones_like(dy), dy)
    # X-driven: step k at X_k = (k - c0) h; row index r = c0 - y / h.
    a_x = c0 - (oy + (-c0 * h - ox) / safe_dx * dy) / h
    m_x = -dy / safe_dx
    # Y-driven: step k at Y_k = (c0 - k) h; column index c = x / h + c0.
    a_y = (ox + (c0 * h - oy) / safe_dy * dx) / h + c0
    m_y = -dx / safe_dy
    a = torch.where(xdrive, a_x, a_y)
    m = torch.where(xdrive, m_x, m_y)
    w = h / torch.where(xdrive, dx.abs(), dy.abs())
    return xdrive, a, m, w


def build_matrix(
    origin: torch.Tensor,
    direction: torch.Tensor,
    image_size: int,
    pixel_size: float,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    chunk_rays: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Build Joseph's projection matrix and its transpose as sparse CSR tensors.

    Parameters
    ----------
    origin, direction : torch.Tensor
        float64 ``(n_rays, 2)``, see :func:`ray_parameters`.
    image_size, pixel_size
        Image grid (``N x N`` pixels of side ``pixel_size``).
    dtype, device
        Dtype and device of the returned matrices.
    chunk_rays : int
        Rays processed at once while building (bounds temporary memory).

    Returns
    -------
    A, At : torch.Tensor
        Sparse CSR ``(n_rays, N*N)`` and ``(N*N, n_rays)`` with identical entries; the image
        is flattened row-major (``i * N + j``).
    """
    n = int(image_size)
    xdrive, a, m, w = (t.to(device) for t in ray_parameters(origin, direction, n, pixel_size))
    n_rays = a.shape[0]
    k = torch.arange(n, dtype=torch.float64, device=device)
    rows_all, cols_all, vals_all = [], [], []
    for start in range(0, n_rays, chunk_rays):
        sl = slice(start, min(start + chunk_rays, n_rays))
        c = a[sl, None] + k[None, :] * m[sl, None]
        lo = torch.floor(c)
        f = c - lo
        lo = lo.to(torch.int64)
        ray = torch.arange(sl.start, sl.stop, device=device)[:, None].expand_as(c)
        kk = torch.arange(n, device=device)[None, :].expand_as(c)
        xd = xdrive[sl, None].expand_as(c)
        for idx, weight in ((lo, 1.0 - f), (lo + 1, f)):
            ok = (idx >= 0) & (idx < n) & (weight > 0)
            pix = torch.where(xd, idx * n + kk, kk * n + idx)
            rows_all.append(ray[ok])
            cols_all.append(pix[ok])
            vals_all.append((weight * w[sl, None])[ok])
    rows = torch.cat(rows_all)
    cols = torch.cat(cols_all)
    vals = torch.cat(vals_all).to(dtype)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta
        warnings.simplefilter("ignore", UserWarning)
        mat = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), vals, (n_rays, n * n), check_invariants=False
        ).coalesce()
        A = mat.to_sparse_csr()
        At = mat.transpose(0, 1).coalesce().to_sparse_csr()
    return A, At
