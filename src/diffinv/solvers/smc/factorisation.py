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
``1e-9``.  Both need only products with ``G`` (:func:`structured`): MCGdiff's set-up calls it
with the operator itself, so that a structured operator is factorised without its dense
matrix, and ``V`` is kept implicit (:class:`~diffinv.solvers.smc.bases.PermutationBasis`,
:class:`~diffinv.solvers.smc.bases.FourierBasis`: ``O(n)`` memory, ``O(n log n)`` per
particle and step).

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

Economy factorisations (only ``V_r``, ``(n, r)``: the observed range), for unstructured
operators with fewer data rows than unknowns (sparse-view CT), where the unobserved complement
needs no basis (:class:`~diffinv.solvers.smc.svd_likelihood.SVDLikelihood`):

* ``"row-gram"``: the symmetric eigendecomposition of the ``m x m`` Gram matrix
  ``A_w A_w^T = U S^2 U^T``, then ``V_r = A_w^T U_r S_r^{-1}``: ``O(m^2 n + m^3)`` instead of
  the SVD's ``O(m n^2 + n^3)``, with the Gram path's accuracy (singular values below about
  ``1e-6`` of the largest count as unobserved).  ``"auto"`` uses it when ``m < n`` and the
  operator has no structure, and falls back to ``"economy"`` if the eigensolver raises;
* ``"economy"``: the SVD without the complement (``torch.linalg.svd(full_matrices=False)``),
  the SVD's accuracy at about the SVD's cost (LAPACK still factors an ``m x m`` block with
  vectors; measured in ``benchmarks/README.md``, "SMC set-up").

Memory.  :func:`setup_bytes` estimates the peak memory of the dense matrix and of each
factorisation; :func:`check_setup_memory` refuses, with the estimate in the message, a set-up
that does not fit (the full unstructured bases are ``n x n``, the economy ones ``n x r``, the
structured ones a few vectors of length ``n``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .bases import DenseBasis, FourierBasis, PermutationBasis

__all__ = ["KINDS", "STRUCTURES", "ECONOMY_KINDS", "factorise", "structured",
           "unstructured_kind", "gram", "row_gram", "economy_svd", "canonical_signs",
           "fourier_columns", "real_fourier_basis", "setup_bytes", "check_setup_memory"]

Basis = DenseBasis | PermutationBasis | FourierBasis

KINDS = ("auto", "diagonal", "circulant", "row-gram", "economy", "gram", "dense")
STRUCTURES = ("diagonal", "circulant")
#: Kinds that return only the observed range ``V_r`` ``(n, r)``.
ECONOMY_KINDS = ("row-gram", "economy")
PROBES = 3
PROBE_RTOL = 1e-9
#: Structured eigenvalues below this fraction of the largest are unobserved: the FFT puts
#: rounding noise of about 1e-16 of the largest eigenvalue on exact zeros, i.e. 1e-8 of the
#: largest singular value, above the dense SVD's cut-off.
EIG_RTOL = 1e-12
#: ``row_gram`` refines (Rayleigh-Ritz) the directions whose singular value is below this
#: fraction of the largest; above, the Gram eigenvectors give them to about ``eps / 0.1^2``.
ROW_GRAM_WEAK = 0.1


def _probe(apply_g: Callable[[torch.Tensor], torch.Tensor], structured_g, n: int,
           generator: torch.Generator) -> bool:
    """True when ``structured_g(z)`` equals ``G z = apply_g(z)`` for random ``z`` ``(n,)``
    (relative 1e-9)."""
    for _ in range(PROBES):
        z = torch.randn(n, dtype=torch.float64, generator=generator)
        want = apply_g(z)
        got = structured_g(z)
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
    return FourierBasis(h, w, freq, is_sine).matrix(), freq


def unstructured_kind(m: int, n: int) -> str:
    """What ``"auto"`` factorises an operator without structure with: ``row-gram`` when it
    has fewer data rows than unknowns (``m < n``), else ``dense``."""
    return "row-gram" if m < n else "dense"


def structured(
    apply_g: Callable[[torch.Tensor], torch.Tensor], image_shape: tuple[int, ...],
    rtol: float = 1e-10, kind: str = "auto", seed: int = 0,
) -> tuple[Basis, torch.Tensor, int, str] | None:
    """``(V, s, r, kind)`` from the normal matrix's structure, or ``None`` when it has none.

    ``apply_g`` maps a float64 ``(n,)`` vector ``z`` to ``G z = A_w^T A_w z``; ``kind``:
    ``"auto"`` (``diagonal``, then ``circulant``), ``"diagonal"`` or ``"circulant"`` (a named
    structure that does not hold raises ``ValueError``).  ``V`` is implicit
    (:class:`~diffinv.solvers.smc.bases.PermutationBasis` or
    :class:`~diffinv.solvers.smc.bases.FourierBasis`) with the ``r`` observed directions first,
    ``s`` the ``(r,)`` singular values in decreasing order.
    """
    if kind not in ("auto", *STRUCTURES):
        raise ValueError(f"kind: expected 'auto' or one of {STRUCTURES}, got {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    for k in (STRUCTURES if kind == "auto" else (kind,)):
        out = _structured(apply_g, image_shape, k, gen)
        if out is not None:
            make_basis, lam = out
            order = _descending(lam)
            lam = lam[order]
            r = _eig_rank(lam, rtol)
            return make_basis(order), lam[:r].clamp_min(0).sqrt(), r, k
        if kind != "auto":
            raise ValueError(f"factorisation: the operator is not {k!r} (probe failed)")
    return None


def factorise(
    aw: torch.Tensor, image_shape: tuple[int, ...], rtol: float = 1e-10, kind: str = "auto",
    seed: int = 0, memory_limit: int | None = None, structures: bool = True,
) -> tuple[Basis, torch.Tensor, int, str]:
    """``(V, s, r, kind)`` of the whitened real matrix ``aw`` (``(m, n)``, float64).

    ``V`` (a basis of :mod:`~diffinv.solvers.smc.bases`) is ``(n, n)`` orthogonal with the
    ``r`` observed directions first, implicit for the structured kinds (:func:`structured`),
    or for the economy kinds (:data:`ECONOMY_KINDS`) ``(n, r)`` with orthonormal columns (the
    observed directions only); ``s`` the ``(r,)`` singular values in decreasing order, ``kind`` the
    factorisation used (see the module docstring).  ``kind="auto"`` tries ``diagonal``, then
    ``circulant``, then ``row-gram`` when ``m < n`` (``economy`` if its eigensolver raises),
    else ``dense`` (``gram`` when the SVD fails to converge); naming a structure that does not
    hold raises ``ValueError``.  ``memory_limit`` (bytes): refuse, before building it, a
    factorisation whose estimated set-up (:func:`setup_bytes`) exceeds it.
    ``structures=False``: skip the structured kinds (the caller has ruled them out).
    """
    if kind not in KINDS:
        raise ValueError(f"factorisation: expected one of {KINDS}, got {kind!r}")
    m, n = aw.shape
    if structures and (kind == "auto" or kind in STRUCTURES):
        out = structured(lambda z: (aw.T @ (aw @ z.to(aw.device))).cpu(), image_shape, rtol,
                         kind, seed)
        if out is not None:
            return out
    auto = kind == "auto"
    if auto:
        kind = unstructured_kind(m, n)
    check_setup_memory(m, n, kind, memory_limit)
    if kind == "gram":
        return gram(aw, rtol)
    if kind == "economy":
        return economy_svd(aw, rtol)
    if kind == "row-gram":
        try:
            return row_gram(aw, rtol)
        except torch.linalg.LinAlgError:
            if not auto:
                raise
            return economy_svd(aw, rtol)
    try:
        _, s, vh = torch.linalg.svd(aw, full_matrices=True)
    except torch.linalg.LinAlgError:  # e.g. "too many repeated singular values"
        if not auto:
            raise
        return gram(aw, rtol)
    r = _svd_rank(s, rtol)
    return DenseBasis(canonical_signs(vh.T)), s[:r], r, "dense"


def canonical_signs(v: torch.Tensor) -> torch.Tensor:
    """``v`` with each column's sign chosen so that its entry of largest magnitude is
    positive: the unstructured factorisations then agree on their common singular vectors
    (an SVD fixes them only up to sign), and so do the runs that use them."""
    if v.numel() == 0:
        return v
    top = v.gather(0, v.abs().argmax(0, keepdim=True))
    return v * torch.where(top < 0, -1.0, 1.0).to(v.dtype)


def _descending(lam: torch.Tensor) -> torch.Tensor:
    """The order of ``lam`` by decreasing value, ties within ``1e-9`` of the largest kept in
    index order: structured eigenvalues are massively repeated (masked Fourier), and the
    rounding of the product that computed them (matrix or operator) must not decide the
    order of the basis' columns."""
    top = float(lam.abs().max()) if lam.numel() else 0.0
    if top == 0.0:
        return torch.arange(lam.numel())
    key = torch.round(lam / top * 1e9)
    return torch.argsort(key, descending=True, stable=True)


def _svd_rank(s: torch.Tensor, rtol: float) -> int:
    """Singular values above ``rtol`` of the largest: observed."""
    return int((s > rtol * float(s.max())).sum()) if s.numel() else 0


def _eig_rank(lam: torch.Tensor, rtol: float) -> int:
    """Eigenvalues (descending) above ``max(EIG_RTOL, rtol^2)`` of the largest: observed."""
    top = float(lam[0]) if lam.numel() else 0.0
    if top <= 0:
        return 0
    return int((lam > max(EIG_RTOL, rtol**2) * top).sum())


def gram(aw: torch.Tensor, rtol: float = 1e-10) -> tuple[DenseBasis, torch.Tensor, int, str]:
    """``(V, s, r, "gram")`` of ``aw`` from ``eigh(A_w^T A_w)`` (see the module docstring):
    eigenvalues above ``max(EIG_RTOL, rtol^2)`` of the largest are observed."""
    lam, v = torch.linalg.eigh(aw.T @ aw)  # ascending
    lam, v = lam.flip(0), v.flip(1)
    r = _eig_rank(lam, rtol)
    return DenseBasis(canonical_signs(v)), lam[:r].sqrt(), r, "gram"


def row_gram(aw: torch.Tensor, rtol: float = 1e-10
             ) -> tuple[DenseBasis, torch.Tensor, int, str]:
    """``(V_r, s, r, "row-gram")``, ``V_r`` ``(n, r)`` orthonormal, from ``eigh(A_w A_w^T)``.

    Pass 1: the eigendecomposition of the ``m x m`` Gram matrix gives the rank ``r`` (same
    cut-off as :func:`gram`) and ``V_1 = A_w^T U_r S_r^{-1}``, whose columns are orthonormal
    only to about ``eps lambda_max / (s_i s_j)`` (the Gram matrix squares the condition
    number): to rounding among the strong directions (``s >= ROW_GRAM_WEAK s_max``), up to
    about ``1e-5`` among the weakest.  Pass 2 (Rayleigh-Ritz on the weak directions only):
    they are orthogonalised against the strong ones and among themselves (Cholesky QR,
    accurate since they are nearly orthonormal) to ``Q``, and the eigendecomposition of
    ``(A_w Q)^T (A_w Q) = W S^2 W^T`` gives them as ``Q W``.  ``V_r`` is then orthonormal to
    rounding and the likelihood diagonal in its coordinates up to about ``eps lambda_max``
    in absolute precision.
    """
    lam, u = torch.linalg.eigh(aw @ aw.T)  # ascending
    lam, u = lam.flip(0), u.flip(1)
    r = _eig_rank(lam, rtol)
    s = lam[:r].sqrt()
    v = (aw.T @ u[:, :r]) / s
    del u
    k = int((s >= ROW_GRAM_WEAK * s[0]).sum()) if r else 0
    if k < r:
        strong, weak = v[:, :k], v[:, k:]
        weak = weak - strong @ (strong.T @ weak)
        chol = torch.linalg.cholesky(weak.T @ weak)
        q = torch.linalg.solve_triangular(chol, weak.T, upper=False).T
        b = aw @ q
        lam2, w = torch.linalg.eigh(b.T @ b)
        lam2, w = lam2.flip(0).clamp_min(0), w.flip(1)
        v = torch.cat([strong, q @ w], dim=1)
        s = torch.cat([s[:k], lam2.sqrt()])
        order = torch.argsort(s, descending=True, stable=True)
        v, s = v[:, order], s[order]
    return DenseBasis(canonical_signs(v)), s, r, "row-gram"


def economy_svd(aw: torch.Tensor, rtol: float = 1e-10
                ) -> tuple[DenseBasis, torch.Tensor, int, str]:
    """``(V_r, s, r, "economy")`` from ``torch.linalg.svd(aw, full_matrices=False)``;
    singular values above ``rtol`` of the largest are observed (as ``dense``)."""
    _, s, vh = torch.linalg.svd(aw, full_matrices=False)
    r = _svd_rank(s, rtol)
    return DenseBasis(canonical_signs(vh[:r].T)), s[:r], r, "economy"


def setup_bytes(m: int, n: int, kind: str) -> int:
    """Estimated peak bytes (float64) of MCGdiff's set-up for an ``(m, n)`` whitened matrix.

    The structured kinds (``diagonal``, ``circulant``) never build the matrix: the operator's
    products with a few probes and the implicit basis, ``4 m + 8 n``.  Otherwise the dense
    matrix costs ``3 m n`` while it is built (the columns, the rows the noise keeps and the
    whitened copy); then the whitened matrix (``m n``) plus the factorisation's arrays:
    ``gram`` (the normal matrix, its eigenvectors and the solver's workspace) and ``dense``
    (the SVD's input copy and both factors); ``m x m`` arrays and ``V_r`` for the economy kinds.
    ``kind="matrix"``: the dense matrix alone.
    """
    m, n = int(m), int(n)
    if kind in STRUCTURES:
        return 8 * (4 * m + 8 * n)
    k = min(m, n)
    extra = {
        "matrix": 0,
        "gram": 5 * n * n,
        "dense": m * n + m * m + 3 * n * n + 4 * k * k,
        "row-gram": 4 * m * m + 3 * n * k,
        "economy": m * n + m * m + 2 * n * k + 4 * k * k,
    }
    if kind not in extra:
        raise ValueError(
            f"kind: expected one of {sorted([*extra, *STRUCTURES])}, got {kind!r}")
    return 8 * max(3 * m * n, m * n + extra[kind])


def check_setup_memory(m: int, n: int, kind: str, limit: int | None) -> int:
    """Raise ``ValueError`` when :func:`setup_bytes` exceeds ``limit`` bytes (``None``: no
    check); returns the estimate.  ``kind="auto"``: the cheapest of a structured basis and
    the unstructured fallback (``row-gram`` when ``m < n``, else ``dense``), the least that
    ``auto`` can need."""
    if kind == "auto":
        need = min(setup_bytes(m, n, "circulant"), setup_bytes(m, n, unstructured_kind(m, n)))
    else:
        need = setup_bytes(m, n, kind)
    if limit is not None and need > limit:
        raise ValueError(
            f"method: 'mcgdiff' needs an estimated {need / 2**30:.3g} GiB to factorise the "
            f"whitened operator ({m} data rows x {n} unknowns, factorisation {kind!r}), more "
            f"than the {limit / 2**30:.3g} GiB of memory available; use method='tds' or a "
            f"smaller image"
        )
    return need


def _structured(apply_g, image_shape, kind: str, gen: torch.Generator):
    """``(make_basis, eigenvalues)`` for ``kind``, or ``None`` if the probe rejects it;
    ``make_basis(order)`` is ``V`` with its columns in ``order``."""
    n = math.prod(int(d) for d in image_shape)
    if kind == "diagonal":
        d = apply_g(torch.ones(n, dtype=torch.float64))  # G 1 is G's diagonal if G is one
        if not _probe(apply_g, lambda z: d * z, n, gen):
            return None
        return PermutationBasis, d
    plane = _plane(image_shape)
    if plane is None:
        return None
    h, w = plane
    e0 = torch.zeros(n, dtype=torch.float64)
    e0[0] = 1.0
    spec = torch.fft.fft2(apply_g(e0).reshape(h, w))  # of G's first column

    def circ(z: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(spec * torch.fft.fft2(z.reshape(h, w))).real.reshape(-1)

    if not _probe(apply_g, circ, n, gen):
        return None
    freq, is_sine = fourier_columns(h, w)
    return (lambda order: FourierBasis(h, w, freq[order], is_sine[order]),
            spec.real.reshape(-1)[freq])
