r"""Joseph's matrix ``A`` and its transpose as CSR arrays, built without a memory peak (numba).

Both matrices are written straight into their final arrays (``int32`` indices when they
fit, values in the requested dtype), so building costs no more memory than the result:

1. count the entries of every ray (row of ``A``) and of every pixel (row of ``A^T``);
2. fill ``A`` in blocks of rays (each row sorted by column), and ``A^T`` by scattering the
   same entries in ray order, which leaves every row of ``A^T`` sorted.

The result is :math:`(4 + b)` bytes per entry per matrix (``b`` the value size) plus the row
pointers, against about three times that for a COO or scipy build (issue 18 measured an
8.2 GB peak for a 2.44 GB matrix).  Entries are those of :func:`.joseph_sparse.build_matrix`.
"""

from __future__ import annotations

import math

import numpy as np

from ...numba_cache import njit_cached
from .joseph_numba import k_range, params_np

__all__ = ["csr_pair_arrays", "estimate_entries", "bytes_per_entry"]


def _jit(fn):
    """numba-compile ``fn`` with the on-disk cache where one can be written (read-only
    installs compile without it, see :mod:`diffinv.numba_cache`)."""
    return njit_cached(fn, __file__)


@_jit
def _steps(a, m, k):  # pragma: no cover - compiled
    """Lower pixel index across the ray and the interpolation fraction at step ``k``."""
    c = a + k * m
    lo_f = math.floor(c)
    f = c - lo_f
    lo = int(lo_f)
    return lo, f


@_jit
def _count(xdrive, a, m, n, row_counts, col_counts):  # pragma: no cover - compiled
    for r in range(a.shape[0]):
        k0, k1 = k_range(a[r], m[r], n)
        c_r = 0
        for k in range(k0, k1):
            lo, f = _steps(a[r], m[r], k)
            for idx, wt in ((lo, 1.0 - f), (lo + 1, f)):
                if idx >= 0 and idx < n and wt > 0.0:
                    c_r += 1
                    col_counts[idx * n + k if xdrive[r] else k * n + idx] += 1
        row_counts[r] = c_r


@_jit
def _fill(xdrive, a, m, w, n, indptr, cols, vals, t_cursor, t_cols, t_vals):  # pragma: no cover
    # A row by row (each row sorted by column); A^T by scattering in ray order.
    for r in range(a.shape[0]):
        k0, k1 = k_range(a[r], m[r], n)
        p0 = indptr[r]
        p = p0
        for k in range(k0, k1):
            lo, f = _steps(a[r], m[r], k)
            for idx, wt in ((lo, 1.0 - f), (lo + 1, f)):
                if idx >= 0 and idx < n and wt > 0.0:
                    col = idx * n + k if xdrive[r] else k * n + idx
                    v = w[r] * wt
                    cols[p] = col
                    vals[p] = v
                    p += 1
                    q = t_cursor[col]
                    t_cols[q] = r
                    t_vals[q] = v
                    t_cursor[col] = q + 1
        if p - p0 > 1:
            order = np.argsort(cols[p0:p], kind="mergesort")
            cols[p0:p] = cols[p0:p][order]
            vals[p0:p] = vals[p0:p][order]


def estimate_entries(n_rays: int, image_size: int) -> int:
    """Upper bound of the entries of ``A``: two per ray and step."""
    return 2 * int(n_rays) * int(image_size)


def bytes_per_entry(value_itemsize: int, n_entries: int) -> int:
    """Bytes per stored entry of one CSR matrix (index + value)."""
    return (4 if n_entries < 2**31 - 1 else 8) + int(value_itemsize)


def csr_pair_arrays(params, image_size: int, dtype: np.dtype = np.float32):
    """``(A, A^T)`` as CSR array triples ``(indptr, indices, values)``.

    Parameters
    ----------
    params
        float64 CPU tensors of :func:`.joseph_sparse.ray_parameters`.
    image_size : int
        ``N``; ``A`` is ``(n_rays, N*N)``.
    dtype : numpy dtype
        Value dtype (float32 or float64).

    Returns
    -------
    (indptr, indices, values), (t_indptr, t_indices, t_values)
        ``indptr`` int64, indices int32 when they fit (int64 otherwise), values ``dtype``.
    """
    n = int(image_size)
    xdrive, a, m, w = params_np(params, np.float64)
    n_rays = a.shape[0]
    row_counts = np.zeros(n_rays, dtype=np.int64)
    col_counts = np.zeros(n * n, dtype=np.int64)
    _count(xdrive, a, m, n, row_counts, col_counts)
    nnz = int(row_counts.sum())
    idx_dtype = np.int32 if max(nnz, n * n, n_rays) < 2**31 - 1 else np.int64
    indptr = np.zeros(n_rays + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    del row_counts
    t_indptr = np.zeros(n * n + 1, dtype=np.int64)
    np.cumsum(col_counts, out=t_indptr[1:])
    del col_counts
    cols = np.empty(nnz, dtype=idx_dtype)
    vals = np.empty(nnz, dtype=dtype)
    t_cols = np.empty(nnz, dtype=idx_dtype)
    t_vals = np.empty(nnz, dtype=dtype)
    t_cursor = t_indptr[:-1].copy()
    _fill(xdrive, a, m, w.astype(np.float64), n, indptr, cols, vals, t_cursor, t_cols, t_vals)
    return (indptr, cols, vals), (t_indptr, t_cols, t_vals)
