r"""Gather form of the transpose of Joseph's projector for parallel-beam views (numba, CPU).

In a parallel-beam view every ray has the same direction, so the same driving axis, slope
``m`` and step length ``w`` (see :func:`.joseph_sparse.ray_parameters`), and the offsets of
its ``D`` rays are affine in the detector index, ``a_r = a_0 + r\,\delta``.  The weight
Joseph's sum gives pixel ``i`` (across the ray) at step ``k`` (along the driving axis) from
ray ``r`` is the hat function of the distance between the ray's interpolation position
``c = a_r + k m`` and the pixel centre, so the transpose is, pixel by pixel,

.. math:: (A^T v)_{k,i} = \sum_{\text{views}} w \sum_r v_r
          \big(1 - |a_0 + k m + r\delta - i|\big)_+ ,

a sum over the one to three rays with ``|r - t| < 1 / |\delta|``,
``t = (i - a_0 - k m) / \delta``.  Evaluated this way (every thread owns whole output rows,
each output value is written once, the sinogram row of a view is read in order), the
back-projection needs no per-thread image buffers and no scattered writes.  It equals the
ray-driven transpose of :mod:`.joseph_numba` up to floating-point rounding (the affine ray
offsets are refitted from the stored ones, a relative change of about ``1e-15``).

:meth:`.ParallelBeamRadon.fbp` uses it on the numba backend.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ...numba_cache import njit_cached
from ...threads import threads_for

__all__ = ["ViewParameters", "view_parameters", "backproject"]


class ViewParameters:
    """Per-view constants of a parallel-beam ray set (see :func:`view_parameters`).

    Attributes
    ----------
    xdrive : np.ndarray
        bool ``(A,)``: the view's rays step along image columns.
    a0, delta, m, w : np.ndarray
        float64 ``(A,)``: ``a_r = a0 + r delta``, slope ``m`` and step length ``w``.
    """

    def __init__(self, xdrive, a0, delta, m, w):
        self.xdrive, self.a0, self.delta, self.m, self.w = xdrive, a0, delta, m, w


def view_parameters(params, n_angles: int, n_detectors: int) -> ViewParameters | None:
    """The per-view constants of angle-major rays, or ``None`` when the rays are not
    parallel-beam views (direction, slope or step length vary within a view, the offsets
    are not affine in the detector index, or a view has a single ray).

    Parameters
    ----------
    params : tuple of torch.Tensor
        ``(xdrive, a, m, w)`` of :func:`.joseph_sparse.ray_parameters`, ``n_angles *
        n_detectors`` rays.
    """
    if n_detectors < 2:
        return None
    xdrive, a, m, w = (p.numpy().reshape(n_angles, n_detectors) for p in params)
    if not (xdrive == xdrive[:, :1]).all():
        return None
    if not (np.ptp(m, axis=1) <= 1e-12 * (1 + np.abs(m[:, 0]))).all():
        return None
    if not (np.ptp(w, axis=1) <= 1e-12 * np.abs(w[:, 0])).all():
        return None
    r = np.arange(n_detectors, dtype=np.float64)
    delta = (a[:, -1] - a[:, 0]) / (n_detectors - 1)
    a0 = a[:, 0]
    fit = a0[:, None] + r[None, :] * delta[:, None]
    if not (np.abs(fit - a) <= 1e-9 * (1 + np.abs(a))).all() or (delta == 0).any():
        return None
    return ViewParameters(
        xdrive[:, 0].astype(np.bool_), a0.copy(), delta, m[:, 0].copy(), w[:, 0].copy()
    )


def _gather_py(sino, xdrive, a0, delta, m, out_x, out_y):  # pragma: no cover - compiled
    # sino (A, D, B) already times the view's step length; out_x, out_y (N, N, B): row k of
    # out_x holds image column k (X-driven views), row k of out_y image row k (Y-driven).
    n_views, n_det, nb = sino.shape
    n = out_x.shape[0]
    for k in numba.prange(n):
        for v in range(n_views):
            dlt = delta[v]
            inv = 1.0 / dlt
            reach = abs(inv)
            ad = abs(dlt)
            base = a0[v] + k * m[v]
            dst = out_x[k] if xdrive[v] else out_y[k]
            row = sino[v]
            for i in range(n):
                t = (i - base) * inv
                r_lo = max(0, int(math.floor(t - reach)))
                r_hi = min(n_det - 1, int(math.floor(t + reach)))
                for r in range(r_lo, r_hi + 1):
                    wt = 1.0 - ad * abs(r - t)
                    if wt > 0.0:
                        for b in range(nb):
                            dst[i, b] += wt * row[r, b]


@numba.njit(inline="always")
def two_tap_span(a0, m, delta, k, n, n_det):  # pragma: no cover - compiled
    """Position ``t0`` of pixel 0 in detector units for line ``k`` of a view, ``1/delta``,
    ``|delta|`` and the pixels ``[i0, i1)`` whose ``t`` lies in ``[-1, D]`` (both taps inside
    a row guarded by two zero cells at each end)."""
    inv = 1.0 / delta
    t0 = -(a0 + k * m) * inv
    e0 = (-1.0 - t0) / inv
    e1 = (n_det - t0) / inv
    if e0 > e1:
        e0, e1 = e1, e0
    return t0, inv, abs(delta), max(0, int(math.ceil(e0))), min(n, int(math.floor(e1)) + 1)


@numba.njit(inline="always")
def two_taps(t, ad, n_det):  # pragma: no cover - compiled
    """Guarded index ``r`` of the lower tap at position ``t`` and the weights of ``r, r+1``;
    clamped into the guards (zeros) where rounding puts ``t`` just outside ``[-1, D]``."""
    rf = math.floor(t)
    fr = t - rf
    r = min(max(int(rf) + 2, 0), n_det + 2)
    return r, max(1.0 - ad * fr, 0.0), max(1.0 - ad * (1.0 - fr), 0.0)


def _gather2_py(sino, xdrive, a0, delta, m, out_x, out_y):  # pragma: no cover - compiled
    # One image, every |delta| >= 1 (at most two rays per pixel and view): sino (A, D + 4)
    # with two zero guard cells at each end; out_x, out_y (N, N) as in _gather_py.
    n_views = sino.shape[0]
    n_det = sino.shape[1] - 4
    n = out_x.shape[0]
    for k in numba.prange(n):
        for v in range(n_views):
            t0, inv, ad, i0, i1 = two_tap_span(a0[v], m[v], delta[v], k, n, n_det)
            dst = out_x[k] if xdrive[v] else out_y[k]
            row = sino[v]
            for i in range(i0, i1):
                r, w0, w1 = two_taps(t0 + i * inv, ad, n_det)
                dst[i] += w0 * row[r] + w1 * row[r + 1]


def _gather2b_py(sino, xdrive, a0, delta, m, out_x, out_y):  # pragma: no cover - compiled
    # A batch of _gather2_py, batch-last: sino (A, D + 4, B), out_x, out_y (N, N, B).  The
    # taps of each pixel and view are computed once for the whole batch.
    n_views = sino.shape[0]
    n_det = sino.shape[1] - 4
    nb = sino.shape[2]
    n = out_x.shape[0]
    for k in numba.prange(n):
        for v in range(n_views):
            t0, inv, ad, i0, i1 = two_tap_span(a0[v], m[v], delta[v], k, n, n_det)
            dst = out_x[k] if xdrive[v] else out_y[k]
            row = sino[v]
            for i in range(i0, i1):
                r, w0, w1 = two_taps(t0 + i * inv, ad, n_det)
                for b in range(nb):
                    dst[i, b] += w0 * row[r, b] + w1 * row[r + 1, b]


# fastmath: the inputs are finite (FBP checks them) and the order of the few additions per
# pixel is free; it lets LLVM fuse and reorder the tap arithmetic (about 15 % faster).
_KERNELS = {
    (name, parallel): (
        njit_cached(fn, __file__, fastmath=True)
        if not parallel
        else numba.njit(parallel=True, fastmath=True)(fn)
    )
    for name, fn in (("general", _gather_py), ("two_taps", _gather2_py),
                     ("two_taps_batch", _gather2b_py))
    for parallel in (False, True)
}


def backproject(
    sino: np.ndarray, views: ViewParameters, image_size: int, per_image: bool = False
) -> np.ndarray:
    """``A^T`` of a batch of sinograms by the gather sum of the module docstring.

    Parameters
    ----------
    sino : np.ndarray
        float32 or float64 ``(B, A, D)``.
    views : ViewParameters
        From :func:`view_parameters` for the operator's rays.
    image_size : int
    per_image : bool
        Run a batch one image at a time (the two-tap case only; for comparisons): by default
        a batch shares each pixel's taps across its images.

    Returns
    -------
    np.ndarray
        ``(B, N, N)``, dtype of ``sino``.
    """
    b, n_views, n_det = sino.shape
    n = int(image_size)
    scaled = np.ascontiguousarray(
        (sino * views.w.astype(sino.dtype)[None, :, None]).transpose(1, 2, 0)
    )
    work = n * n * n_views * 2 * b
    parallel = numba.get_num_threads() > 1 and threads_for(work, numba.get_num_threads()) > 1
    geometry = (views.xdrive, views.a0, views.delta, views.m)
    if (np.abs(views.delta) >= 1.0).all() and b > 1 and not per_image:
        guarded = np.zeros((n_views, n_det + 4, b), dtype=sino.dtype)
        guarded[:, 2:-2] = scaled
        out_x = np.zeros((n, n, b), dtype=sino.dtype)
        out_y = np.zeros_like(out_x)
        _KERNELS["two_taps_batch", parallel](guarded, *geometry, out_x, out_y)
        img = out_x.transpose(1, 0, 2) + out_y
        return np.ascontiguousarray(img.transpose(2, 0, 1))
    if (np.abs(views.delta) >= 1.0).all():
        out = np.empty((b, n, n), dtype=sino.dtype)
        guarded = np.zeros((n_views, n_det + 4), dtype=sino.dtype)
        for j in range(b):
            guarded[:, 2:-2] = scaled[:, :, j]
            out_x = np.zeros((n, n), dtype=sino.dtype)
            out_y = np.zeros_like(out_x)
            _KERNELS["two_taps", parallel](guarded, *geometry, out_x, out_y)
            np.add(out_x.T, out_y, out=out[j])
        return out
    out_x = np.zeros((n, n, b), dtype=sino.dtype)
    out_y = np.zeros_like(out_x)
    _KERNELS["general", parallel](scaled, *geometry, out_x, out_y)
    img = out_x.transpose(1, 0, 2) + out_y
    return np.ascontiguousarray(img.transpose(2, 0, 1))
