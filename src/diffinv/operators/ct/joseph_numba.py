"""Joseph's projector and its exact transpose evaluated on the fly with numba (CPU).

The sums are those of :mod:`.joseph_sparse` (same per-ray constants from
:func:`.joseph_sparse.ray_parameters`); nothing but the rays is stored.  Images are laid out
batch-last, ``(N, N, B)``, so each interpolation reads ``B`` contiguous values and a batch
costs little more than one image.  Rays driven along ``X`` read the image, rays driven along
``Y`` read its transpose, so every ray walks memory contiguously.  The projection runs in
parallel over rays; the back-projection (a scatter) runs in parallel over blocks of rays,
each into its own pair of buffers, which are summed at the end.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["forward", "adjoint"]


@numba.njit(inline="always")
def _k_range(a, m, n):  # pragma: no cover - compiled
    """Steps ``k`` whose interpolation position ``a + k m`` can touch the image."""
    lo_c, hi_c = -1.0, float(n)
    if m == 0.0:
        if lo_c < a < hi_c:
            return 0, n
        return 0, 0
    k1 = (lo_c - a) / m
    k2 = (hi_c - a) / m
    if k1 > k2:
        k1, k2 = k2, k1
    k_start = max(0, int(math.floor(k1)) - 1)
    k_stop = min(n, int(math.ceil(k2)) + 2)
    return k_start, max(k_start, k_stop)


def _forward_py(img, img_t, xdrive, a, m, w, out):  # pragma: no cover - compiled
    # img, img_t: (N + 2, N, B) with zero rows 0 and N + 1 (row lo + 1 holds image row lo).
    n = img.shape[1]
    nb = img.shape[2]
    for r in numba.prange(a.shape[0]):
        ar, mr, wr = a[r], m[r], w[r]
        src = img if xdrive[r] else img_t
        k0, k1 = _k_range(ar, mr, n)
        if nb == 1:
            acc = 0.0
            for k in range(k0, k1):
                c = ar + k * mr
                lo_f = math.floor(c)
                f = c - lo_f
                lo = int(lo_f)
                if lo < -1 or lo >= n:
                    continue
                acc += (1.0 - f) * src[lo + 1, k, 0] + f * src[lo + 2, k, 0]
            out[r, 0] = wr * acc
        else:
            acc = np.zeros(nb, dtype=out.dtype)
            for k in range(k0, k1):
                c = ar + k * mr
                lo_f = math.floor(c)
                f = c - lo_f
                lo = int(lo_f)
                if lo < -1 or lo >= n:
                    continue
                g = 1.0 - f
                for b in range(nb):
                    acc[b] += g * src[lo + 1, k, b] + f * src[lo + 2, k, b]
            for b in range(nb):
                out[r, b] = wr * acc[b]


def _adjoint_py(sino, xdrive, a, m, w, buf, buf_t):  # pragma: no cover - compiled
    # buf, buf_t: (blocks, N + 2, N, B); rows 0 and N + 1 collect (and discard) edge terms.
    n_blocks = buf.shape[0]
    n = buf.shape[2]
    nb = buf.shape[3]
    n_rays = a.shape[0]
    per = (n_rays + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        for r in range(blk * per, min(n_rays, (blk + 1) * per)):
            ar, mr, wr = a[r], m[r], w[r]
            dst = buf[blk] if xdrive[r] else buf_t[blk]
            k0, k1 = _k_range(ar, mr, n)
            for k in range(k0, k1):
                c = ar + k * mr
                lo_f = math.floor(c)
                f = c - lo_f
                lo = int(lo_f)
                if lo < -1 or lo >= n:
                    continue
                w0 = wr * (1.0 - f)
                w1 = wr * f
                for b in range(nb):
                    v = sino[r, b]
                    dst[lo + 1, k, b] += w0 * v
                    dst[lo + 2, k, b] += w1 * v


# Parallel kernels for large problems; serial ones (prange runs as range) for small ones, where
# waking a thread pool costs more than the work, especially on a busy machine.  Only the
# serial ones use numba's on-disk cache: the cache is keyed by the Python function, so two
# compilations of one function must not both write it.
_forward_par = numba.njit(parallel=True)(_forward_py)
_forward_ser = numba.njit(parallel=False, cache=True)(_forward_py)
_adjoint_par = numba.njit(parallel=True)(_adjoint_py)
_adjoint_ser = numba.njit(parallel=False, cache=True)(_adjoint_py)
PARALLEL_MIN_WORK = 2_000_000  # rays x steps x batch below which the serial kernels run


def _params_np(params, dtype: np.dtype):
    xdrive, a, m, w = params
    return (
        xdrive.numpy().astype(np.bool_),
        a.numpy().astype(np.float64),
        m.numpy().astype(np.float64),
        w.numpy().astype(dtype),
    )


def forward(x: torch.Tensor, params, image_size: int) -> torch.Tensor:
    """Project a CPU batch ``x`` of shape ``(B, N*N)`` to ``(B, n_rays)``.

    ``params`` are the float64 CPU tensors returned by
    :func:`.joseph_sparse.ray_parameters`.
    """
    b = x.shape[0]
    arr = x.detach().numpy().reshape(b, image_size, image_size)
    img = np.zeros((image_size + 2, image_size, b), dtype=arr.dtype)
    img[1:-1] = arr.transpose(1, 2, 0)
    img_t = np.zeros_like(img)
    img_t[1:-1] = arr.transpose(2, 1, 0)
    xdrive, a, m, w = _params_np(params, img.dtype)
    out = np.zeros((a.shape[0], b), dtype=img.dtype)
    parallel = a.shape[0] * image_size * b >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1
    (_forward_par if parallel else _forward_ser)(img, img_t, xdrive, a, m, w, out)
    return torch.from_numpy(np.ascontiguousarray(out.T))


def adjoint(y: torch.Tensor, params, image_size: int) -> torch.Tensor:
    """Back-project a CPU batch ``y`` of shape ``(B, n_rays)`` to ``(B, N*N)`` (exact transpose)."""
    b = y.shape[0]
    sino = np.ascontiguousarray(y.detach().numpy().T)
    xdrive, a, m, w = _params_np(params, sino.dtype)
    parallel = a.shape[0] * image_size * b >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1
    n_blocks = max(1, min(numba.get_num_threads(), a.shape[0])) if parallel else 1
    shape = (n_blocks, image_size + 2, image_size, b)
    buf = np.zeros(shape, dtype=sino.dtype)
    buf_t = np.zeros(shape, dtype=sino.dtype)
    (_adjoint_par if parallel else _adjoint_ser)(sino, xdrive, a, m, w, buf, buf_t)
    img = buf[:, 1:-1].sum(axis=0) + buf_t[:, 1:-1].sum(axis=0).transpose(1, 0, 2)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1).reshape(b, -1)))
