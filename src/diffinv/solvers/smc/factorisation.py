r"""Right singular vectors of a whitened linear-Gaussian operator, using its structure.

MCGdiff works in the coordinates of the SVD ``A_w = U S V^T`` of the whitened operator
``A_w = diag(1/std) A`` (:class:`~diffinv.solvers.smc.mcgdiff.SVDLikelihood`).  Only ``V`` and
``S`` are needed (``U_r^T y_w = S_r^{-1} V_r^T A_w^T y_w``), i.e. the eigendecomposition of
the normal matrix ``G = A_w^T A_w``.  A dense SVD costs ``O(m n^2)`` (36.8 s at 4,096
unknowns); two structures common in imaging give it in ``O(m n)``:

* ``"diagonal"``: ``G`` is diagonal (masks, inpainting, pixel-wise gains, selections: the
  columns of ``A_w`` are orthogonal).  ``V`` is the identity, ``S^2`` the column norms.
* ``"circulant"``: ``G`` is block-circulant with circulant blocks over the image's last two
  axes (masked unitary Fourier sampling with equal noise, periodic convolutions).  ``V`` is the
  real orthonormal 2-D Fourier basis (a cosine and a sine per conjugate pair of frequencies),
  ``S^2`` the 2-D DFT of ``G``'s first column.

Each structure is *verified*, not assumed: ``G z`` is compared with the structured product
for random probes ``z`` (``A_w^T (A_w z)``, two matrix-vector products), to a relative
``1e-9``.

Operators with neither structure (CT, general blurs):

* ``"dense"``: the SVD of ``A_w`` (``torch.linalg.svd``), the default for them;
* ``"gram"``: the symmetric eigendecomposition of ``G = A_w^T A_w`` (``torch.linalg.eigh``),
  robust to repeated singular values, on which LAPACK's divide-and-conquer SVD can fail to
  converge (it did on masked Fourier at 64 x 64).  ``"auto"`` falls back to it when the SVD
  raises; it can also be asked for.  Forming ``G`` squares the condition number: its
  eigenvalues are exact to about ``eps lambda_max`` in absolute terms, so singular values
  below about ``1e-6`` of the largest (:data:`EIG_RTOL` on the eigenvalues) count as
  unobserved, where the SVD resolves them down to ``rtol``, and the noise variances of the
  weakest observed directions are less accurate than the SVD's; the log-likelihood of
  images, which weighs each direction by its eigenvalue, keeps the SVD's accuracy where the
  ranks agree (measured in ``benchmarks/README.md``, "SMC set-up").  It is not much cheaper:
  the ``n x n`` symmetric eigensolver costs about what the SVD's right factor does.
"""

from __future__ import annotations

import math

import torch

__all__ = ["KINDS", "factorise", "gram", "fourier_columns", "fourier_basis",
           "real_fourier_basis"]

KINDS = ("auto", "diagonal", "circulant", "gram", "dense")
PROBES = 3
PROBE_RTOL = 1e-9
#: Structured eigenvalues below this fraction of the largest are unobserved: the FFT puts
#: rounding noise of about 1e-16 of the largest eigenvalue on exact zeros, i.e. 1e-8 of the
#: largest singular value, above the dense SVD's cut-off.
EIG_RTOL = 1e-12


def _probe(aw: torch.Tensor, apply_g, generator: torch.Generator) -> bool:
    """True when ``apply_g(z)`` equals ``A_w^T A_w z`` for random ``z`` (relative 1e-9)."""
    n = aw.shape[1]
    for _ in range(PROBES):
        z = torch.randn(n, dtype=aw.dtype, generator=generator)
        want = aw.T @ (aw @ z)
        got = apply_g(z)
        scale = float(want.norm()) + 1e-300
        if not float((got - want).norm()) <= PROBE_RTOL * scale:
            return False
    return True


def _plane(image_shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(H, W)`` when every axis before the last two has length 1 (else ``None``)."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 1:
        return 1, shape[0]
    if math.prod(shape[:-2]) != 1:
        return None
    return shape[-2], shape[-1]


def fourier_columns(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns of :func:`real_fourier_basis`, described: ``(freq, is_sine)``.

    Column ``j`` is the cosine (``is_sine[j]`` False) or sine of the frequency with flat
    index ``freq[j] = k1 * w + k2``: one cosine for each self-conjugate frequency, a cosine
    and a sine for one representative of every conjugate pair.
    """
    n = h * w
    k1 = torch.arange(h)[:, None].expand(h, w).reshape(-1)
    k2 = torch.arange(w)[None, :].expand(h, w).reshape(-1)
    conj = ((-k1) % h) * w + ((-k2) % w)
    flat = torch.arange(n)
    sc, pr = flat[conj == flat], flat[flat < conj]
    freq = torch.cat([sc, pr, pr])
    is_sine = torch.cat([torch.zeros(sc.numel() + pr.numel(), dtype=torch.bool),
                         torch.ones(pr.numel(), dtype=torch.bool)])
    return freq, is_sine


def fourier_basis(h: int, w: int, freq: torch.Tensor, is_sine: torch.Tensor) -> torch.Tensor:
    """float64 ``(h w, len(freq))`` orthonormal real Fourier vectors (see
    :func:`fourier_columns`), built in the given column order."""
    n = h * w
    fl1 = (freq // w).to(torch.float64) / h
    fl2 = (freq % w).to(torch.float64) / w
    i1 = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w).reshape(-1)
    i2 = torch.arange(w, dtype=torch.float64)[None, :].expand(h, w).reshape(-1)
    ph = 2 * math.pi * (i1[:, None] * fl1[None, :] + i2[:, None] * fl2[None, :])
    q = torch.where(is_sine[None, :], torch.sin(ph), torch.cos(ph))
    self_conj = ((2 * (freq // w)) % h == 0) & ((2 * (freq % w)) % w == 0)
    norm = torch.full(freq.shape, math.sqrt(2.0 / n), dtype=torch.float64)
    norm[self_conj] = 1.0 / math.sqrt(n)
    return q * norm[None, :]


def real_fourier_basis(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real orthonormal Fourier basis of ``h x w`` images, as the columns of ``(n, n)``.

    Returns
    -------
    q : torch.Tensor
        float64 ``(n, n)``, ``n = h w``: column ``j`` is a cosine or sine of frequency
        ``freq[j]`` (flattened row-major), orthonormal.
    freq : torch.Tensor
        int64 ``(n,)``: flat index ``k1 * w + k2`` of each column's frequency.
    """
    freq, is_sine = fourier_columns(h, w)
    return fourier_basis(h, w, freq, is_sine), freq


def factorise(
    aw: torch.Tensor, image_shape: tuple[int, ...], rtol: float = 1e-10, kind: str = "auto",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, int, str]:
    """``(V, s, r, kind)`` of the whitened real matrix ``aw`` (``(m, n)``, float64).

    ``V`` is ``(n, n)`` orthogonal with the ``r`` observed directions first, ``s`` the
    ``(r,)`` singular values in decreasing order, ``kind`` the factorisation used (see the
    module docstring).  ``kind="auto"`` tries ``diagonal``, then ``circulant``, then
    ``dense``, and ``gram`` when the SVD fails to converge; naming a structure that does not
    hold raises ``ValueError``.
    """
    if kind not in KINDS:
        raise ValueError(f"factorisation: expected one of {KINDS}, got {kind!r}")
    n = aw.shape[1]
    gen = torch.Generator().manual_seed(seed)
    tries = ("diagonal", "circulant") if kind == "auto" else (kind,)
    for k in tries:
        if k in ("dense", "gram"):
            break
        out = _structured(aw, image_shape, k, gen)
        if out is not None:
            build_v, lam = out
            order = torch.argsort(lam, descending=True, stable=True)
            lam = lam[order]
            top = float(lam[0]) if n else 0.0
            r = int((lam > max(EIG_RTOL, rtol**2) * top).sum()) if top > 0 else 0
            return build_v(order), lam[:r].clamp_min(0).sqrt(), r, k
        if kind != "auto":
            raise ValueError(f"factorisation: the operator is not {k!r} (probe failed)")
    if kind == "gram":
        return gram(aw, rtol)
    try:
        _, s, vh = torch.linalg.svd(aw, full_matrices=True)
    except torch.linalg.LinAlgError:  # e.g. "too many repeated singular values"
        if kind != "auto":
            raise
        return gram(aw, rtol)
    r = int((s > rtol * float(s.max())).sum()) if s.numel() else 0
    return vh.T.contiguous(), s[:r], r, "dense"


def gram(aw: torch.Tensor, rtol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor, int, str]:
    """``(V, s, r, "gram")`` of ``aw`` from ``eigh(A_w^T A_w)`` (see the module docstring):
    eigenvalues above ``max(EIG_RTOL, rtol^2)`` of the largest are observed."""
    n = aw.shape[1]
    lam, v = torch.linalg.eigh(aw.T @ aw)  # ascending
    lam, v = lam.flip(0), v.flip(1)
    top = float(lam[0]) if n else 0.0
    if top <= 0:
        return v.contiguous(), lam[:0], 0, "gram"
    cut = max(EIG_RTOL, rtol**2) * top
    r = int((lam > cut).sum())
    return v.contiguous(), lam[:r].sqrt(), r, "gram"


def _structured(aw: torch.Tensor, image_shape, kind: str, gen: torch.Generator):
    """``(build_v, eigenvalues)`` for ``kind``, or ``None`` if the probe rejects it;
    ``build_v(order)`` is ``V`` with its columns in ``order`` (built once, in place)."""
    n = aw.shape[1]
    if kind == "diagonal":
        d = (aw**2).sum(0)
        if not _probe(aw, lambda z: d * z, gen):
            return None
        def permutation(order: torch.Tensor) -> torch.Tensor:
            v = torch.zeros(n, n, dtype=aw.dtype)
            v[order, torch.arange(n)] = 1.0
            return v

        return permutation, d
    plane = _plane(image_shape)
    if plane is None:
        return None
    h, w = plane
    e0 = torch.zeros(n, dtype=aw.dtype)
    e0[0] = 1.0
    c = (aw.T @ (aw @ e0)).reshape(h, w)  # first column of G
    spec = torch.fft.fft2(c)

    def circ(z: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(spec * torch.fft.fft2(z.reshape(h, w))).real.reshape(-1)

    if not _probe(aw, circ, gen):
        return None
    freq, is_sine = fourier_columns(h, w)
    return (lambda order: fourier_basis(h, w, freq[order], is_sine[order]),
            spec.real.reshape(-1)[freq])
