"""Joseph's projector and its exact transpose evaluated on the fly with numba (CPU).

The sums are those of :mod:`.joseph_sparse` (same per-ray constants from
:func:`.joseph_sparse.ray_parameters`); nothing but the rays is stored.  Images are laid out
batch-last, ``(N, N, B)``, so each interpolation reads ``B`` contiguous values and a batch
costs little more than one image.  Rays driven along ``X`` read the image, rays driven along
``Y`` read its transpose, so every ray walks memory contiguously.  For batches the steps along
the rays are taken in tiles of image columns (:func:`tile_columns`, :data:`TILE_BYTES`): all
rays cover one tile before the next, so the columns they read or write stay in the core's
cache instead of streaming the whole batch-last image once per view.  The projection runs in
parallel over rays; the back-projection (a scatter) runs in parallel over blocks of rays,
each into its own pair of buffers, which are summed at the end.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from ...numba_cache import njit_cached
from ...threads import threads_for

__all__ = [
    "forward", "adjoint", "k_range", "params_np", "tile_columns", "ParamsCache", "TILE_BYTES",
]


@numba.njit(inline="always")
def k_range(a, m, n):  # pragma: no cover - compiled
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


@numba.njit(inline="always")
def tile_range(a, m, n, kt, tile):  # pragma: no cover - compiled
    """The steps of :func:`k_range` inside the tile ``[kt, kt + tile)``."""
    k0, k1 = k_range(a, m, n)
    return max(k0, kt), min(k1, kt + tile)


@numba.njit(inline="always")
def taps(c, fw):  # pragma: no cover - compiled
    """Lower row ``lo`` of position ``c`` and its two weights ``(g, f)`` rounded to the
    dtype of the scratch pair ``fw`` (``fw[1]`` holds 1)."""
    lo_f = math.floor(c)
    fw[0] = c - lo_f
    f = fw[0]
    return int(lo_f), fw[1] - f, f


def _fwd1_py(img, img_t, xdrive, a, m, w, out):  # pragma: no cover - compiled
    # One image.  img, img_t: (N + 2, N) with zero rows 0 and N + 1 (row lo + 1 holds image
    # row lo), img_t the transpose for rays driven along Y.  out: (n_rays,).
    n = img.shape[1]
    for r in numba.prange(a.shape[0]):
        ar, mr = a[r], m[r]
        src = img if xdrive[r] else img_t
        k0, k1 = k_range(ar, mr, n)
        acc = 0.0
        for k in range(k0, k1):
            c = ar + k * mr
            lo_f = math.floor(c)
            f = c - lo_f
            lo = int(lo_f)
            if lo < -1 or lo >= n:
                continue
            acc += (1.0 - f) * src[lo + 1, k] + f * src[lo + 2, k]
        out[r] = w[r] * acc


def _fwdb_py(img, img_t, xdrive, a, m, w, out, n_blocks, tile):  # pragma: no cover - compiled
    # A batch, batch-last: img (N + 2, N, B); out (n_rays, B), zeroed by the caller.  One
    # pass along each ray serves the whole batch (contiguous reads of B values per sample).
    # Rays are split into n_blocks blocks (one per thread); inside a block the steps k are
    # taken in tiles of `tile` columns, all rays of the block per tile, so that the image
    # columns read stay in the core's cache (a batch-last 512 x 512 x 8 image and its
    # transpose are 16 MB).  Interpolation weights are rounded to the image dtype so that
    # float32 batches are interpolated in float32 (vectorised) arithmetic.
    n = img.shape[1]
    nb = img.shape[2]
    n_rays = a.shape[0]
    per = (n_rays + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        acc = np.empty(nb, dtype=out.dtype)
        fw = np.ones(2, dtype=out.dtype)  # fw[0]: weight in the image dtype; fw[1] = 1
        for kt in range(0, n, tile):
            for r in range(blk * per, min(n_rays, (blk + 1) * per)):
                ar, mr = a[r], m[r]
                k0, k1 = tile_range(ar, mr, n, kt, tile)
                if k0 >= k1:
                    continue
                src = img if xdrive[r] else img_t
                acc[:] = 0.0
                for k in range(k0, k1):
                    lo, g, f = taps(ar + k * mr, fw)
                    if lo < -1 or lo >= n:
                        continue
                    row0 = src[lo + 1, k]
                    row1 = src[lo + 2, k]
                    for b in range(nb):
                        acc[b] += g * row0[b] + f * row1[b]
                for b in range(nb):
                    out[r, b] += acc[b]
        for r in range(blk * per, min(n_rays, (blk + 1) * per)):
            wr = w[r]
            for b in range(nb):
                out[r, b] *= wr


def _adj1_py(sino, xdrive, a, m, w, buf, buf_t):  # pragma: no cover - compiled
    # One sinogram (n_rays,) scattered into buf / buf_t: (blocks, N + 2, N); each block of
    # rays (one per thread) owns one pair of buffers; rows 0 and N + 1 catch edge terms.
    n_blocks = buf.shape[0]
    n = buf.shape[2]
    n_rays = a.shape[0]
    per = (n_rays + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        for r in range(blk * per, min(n_rays, (blk + 1) * per)):
            v = sino[r] * w[r]
            if v == 0.0:
                continue
            ar, mr = a[r], m[r]
            dst = buf[blk] if xdrive[r] else buf_t[blk]
            k0, k1 = k_range(ar, mr, n)
            for k in range(k0, k1):
                c = ar + k * mr
                lo_f = math.floor(c)
                f = c - lo_f
                lo = int(lo_f)
                if lo < -1 or lo >= n:
                    continue
                fv = f * v
                dst[lo + 1, k] += v - fv
                dst[lo + 2, k] += fv


def _adjb_py(sino, xdrive, a, m, w, buf, buf_t, tile):  # pragma: no cover - compiled
    # A batch: sino (n_rays, B); buf, buf_t (blocks, N + 2, N, B), batch-last.  Steps k are
    # taken in tiles of `tile` columns as in _fwdb_py, so the columns written stay in cache.
    n_blocks = buf.shape[0]
    n = buf.shape[2]
    nb = buf.shape[3]
    n_rays = a.shape[0]
    per = (n_rays + n_blocks - 1) // n_blocks
    for blk in numba.prange(n_blocks):
        v = np.empty(nb, dtype=buf.dtype)
        fw = np.ones(2, dtype=buf.dtype)
        for kt in range(0, n, tile):
            for r in range(blk * per, min(n_rays, (blk + 1) * per)):
                ar, mr, wr = a[r], m[r], w[r]
                k0, k1 = tile_range(ar, mr, n, kt, tile)
                if k0 >= k1:
                    continue
                for b in range(nb):
                    v[b] = wr * sino[r, b]
                dst = buf[blk] if xdrive[r] else buf_t[blk]
                for k in range(k0, k1):
                    lo, g, f = taps(ar + k * mr, fw)
                    if lo < -1 or lo >= n:
                        continue
                    row0 = dst[lo + 1, k]
                    row1 = dst[lo + 2, k]
                    for b in range(nb):
                        row0[b] += g * v[b]
                        row1[b] += f * v[b]


# Parallel kernels for large problems; serial ones (prange runs as range) for small ones, where
# waking a thread pool costs more than the work, especially on a busy machine.  Only the
# serial ones use numba's on-disk cache: the cache is keyed by the Python function, so two
# compilations of one function must not both write it.  On a read-only install the cache goes
# to a user folder or is skipped (diffinv.numba_cache).
_KERNELS = {
    (name, parallel): (
        njit_cached(fn, __file__) if not parallel else numba.njit(parallel=True)(fn)
    )
    for name, fn in (("fwd1", _fwd1_py), ("fwdb", _fwdb_py), ("adj1", _adj1_py), ("adjb", _adjb_py))
    for parallel in (False, True)
}


def _use_parallel(n_rays: int, image_size: int, batch: int) -> bool:
    """Parallel kernels only when the thread policy gives the work (rays x steps x batch
    interpolations) more than one thread (:func:`diffinv.threads.threads_for`)."""
    work = n_rays * image_size * batch
    return numba.get_num_threads() > 1 and threads_for(work, numba.get_num_threads()) > 1


#: Bytes of image columns one tile of the batch kernels touches per image (the padded image
#: or its transpose): a quarter of a 4 MiB L2 cache, so that both, the rays' output and the
#: other threads' lines fit.  Measured best at 512 x 512 x 8 float32 (64 columns).
TILE_BYTES = 1 << 20


def tile_columns(image_size: int, batch: int, itemsize: int) -> int:
    """Columns per tile of the batch kernels: ``TILE_BYTES`` of padded batch-last columns,
    at least 16 and at most the image size."""
    per_column = (image_size + 2) * batch * itemsize
    return int(min(image_size, max(16, TILE_BYTES // per_column)))


def params_np(params, dtype: np.dtype):
    """NumPy ``(xdrive, a, m, w)`` with ``w`` in ``dtype``.

    ``params`` are the float64 tensors of :func:`.joseph_sparse.ray_parameters` or a
    :class:`ParamsCache`, which converts once per dtype and keeps the arrays.
    """
    if isinstance(params, ParamsCache):
        return params.get(dtype)
    xdrive, a, m, w = params
    return (
        xdrive.numpy().astype(np.bool_),
        a.numpy().astype(np.float64),
        m.numpy().astype(np.float64),
        w.numpy().astype(dtype),
    )


class ParamsCache:
    """The per-ray constants as NumPy arrays, converted once per value dtype."""

    def __init__(self, params):
        self.params = params
        self._arrays: dict = {}

    def get(self, dtype: np.dtype):
        """``(xdrive, a, m, w)`` with ``w`` in ``dtype`` (cached)."""
        key = np.dtype(dtype).str
        if key not in self._arrays:
            self._arrays[key] = params_np(self.params, dtype)
        return self._arrays[key]


def forward(x: torch.Tensor, params, image_size: int, n_blocks: int | None = None) -> torch.Tensor:
    """Project a CPU batch ``x`` of shape ``(B, N*N)`` to ``(B, n_rays)``.

    ``params`` are the float64 CPU tensors returned by
    :func:`.joseph_sparse.ray_parameters` (or a :class:`ParamsCache`).  ``n_blocks``: blocks
    of rays of the batch kernel (default: one per thread when it runs in parallel, else 1).
    """
    b, n = x.shape[0], image_size
    arr = x.detach().numpy().reshape(b, n, n)
    xdrive, a, m, w = params_np(params, arr.dtype)
    parallel = _use_parallel(a.shape[0], n, b)
    if b == 1:
        img = np.zeros((n + 2, n), dtype=arr.dtype)
        img[1:-1] = arr[0]
        img_t = np.zeros_like(img)
        img_t[1:-1] = arr[0].T
        out = np.empty(a.shape[0], dtype=arr.dtype)
        _KERNELS["fwd1", parallel](img, img_t, xdrive, a, m, w, out)
        return torch.from_numpy(out[None])
    img = np.zeros((n + 2, n, b), dtype=arr.dtype)
    img[1:-1] = arr.transpose(1, 2, 0)
    img_t = np.zeros_like(img)
    img_t[1:-1] = arr.transpose(2, 1, 0)
    out = np.zeros((a.shape[0], b), dtype=arr.dtype)
    if n_blocks is None:
        n_blocks = max(1, min(numba.get_num_threads(), a.shape[0])) if parallel else 1
    tile = tile_columns(n, b, arr.itemsize)
    _KERNELS["fwdb", parallel](img, img_t, xdrive, a, m, w, out, n_blocks, tile)
    return torch.from_numpy(np.ascontiguousarray(out.T))


def adjoint(y: torch.Tensor, params, image_size: int, n_blocks: int | None = None) -> torch.Tensor:
    """Back-project a CPU batch ``y`` of shape ``(B, n_rays)`` to ``(B, N*N)`` (exact transpose).

    ``n_blocks``: blocks of rays, each scattering into its own buffers (default: one per
    thread when the kernel runs in parallel, else 1).
    """
    b, n = y.shape[0], image_size
    arr = y.detach().numpy()
    xdrive, a, m, w = params_np(params, arr.dtype)
    parallel = _use_parallel(a.shape[0], n, b)
    if n_blocks is None:
        n_blocks = max(1, min(numba.get_num_threads(), a.shape[0])) if parallel else 1
    if b == 1:
        buf = np.zeros((n_blocks, n + 2, n), dtype=arr.dtype)
        buf_t = np.zeros_like(buf)
        _KERNELS["adj1", parallel](np.ascontiguousarray(arr[0]), xdrive, a, m, w, buf, buf_t)
        img = buf[:, 1:-1].sum(axis=0) + buf_t[:, 1:-1].sum(axis=0).T
        return torch.from_numpy(np.ascontiguousarray(img).reshape(1, -1))
    sino = np.ascontiguousarray(arr.T)
    buf = np.zeros((n_blocks, n + 2, n, b), dtype=arr.dtype)
    buf_t = np.zeros_like(buf)
    _KERNELS["adjb", parallel](sino, xdrive, a, m, w, buf, buf_t, tile_columns(n, b, arr.itemsize))
    img = buf[:, 1:-1].sum(axis=0) + buf_t[:, 1:-1].sum(axis=0).transpose(1, 0, 2)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)).reshape(b, -1))
