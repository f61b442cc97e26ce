r"""Shared machinery of the CT projectors: a ray transform with an exact transpose.

:class:`RayTransform` is a :class:`~diffinv.operators.base.LinearOperator` defined by a list of
rays (see :mod:`.geometry`) and Joseph's interpolating projector (:mod:`.joseph_sparse`).  The
geometry subclasses (:class:`~.parallel_beam.ParallelBeamRadon`,
:class:`~.fan_beam.FanBeamRadon`) only supply the rays and the filtered back-projection.

Backends (all give the same matrix, the back-projection is its exact transpose):

* ``"numba"`` — on-the-fly numba kernels (CPU only, no set-up).  Memory: nothing stored;
  per call the padded image and its transpose, ``2 (N + 2) N B`` values, and for the
  adjoint one such pair per thread (:meth:`RayTransform.memory_estimate`);
* ``"sparse"`` — a torch sparse CSR matrix and its transpose, built once per
  ``(device, dtype)`` and cached (CPU and CUDA; written in place by numba on the CPU,
  :mod:`.joseph_csr`, with no peak above the result; by vectorised torch on other devices).
  Memory: ``2 nnz (4 + b)`` bytes (``b`` = 4 in float32, 8 in float64; int32 indices) with
  ``nnz <= 2 n_rays N``: about 20 M entries (0.3 GB in float32 with the transpose) at
  256 x 256 with 180 x 256 rays, 4.8 GB at 512 x 512 with 720 x 512 rays;
* ``"auto"`` (default) — ``sparse`` on GPUs, and on the CPU while the matrix is small
  enough (:attr:`RayTransform.sparse_auto_max_entries`, 40 M entries: 256 x 256 images with
  180 x 256 rays qualify, 640 x 640 with 181 x 640 do not) **and** its estimated memory is at
  most :attr:`RayTransform.sparse_auto_memory_fraction` of the memory available
  (``MemAvailable`` of ``/proc/meminfo``), ``numba`` beyond.  The choice is made once per
  ``(device, dtype)`` and kept.  On this project's CPU benchmark the sparse pair is the
  fastest once built (a few seconds, once per geometry and dtype); numba needs no memory
  and no set-up.  Pass ``backend="sparse"`` or ``"numba"`` to choose yourself.

Projection and back-projection are wrapped in :class:`torch.autograd.Function` whose
backward passes are the transpose, so gradients through the operator are exact and cheap.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse
import torch

from ...threads import get_threads, threads_for, work_threads
from ..base import LinearOperator
from . import joseph_sparse

try:  # numba is a core dependency, but keep the torch path usable without it
    from . import joseph_csr, joseph_numba
except ImportError:  # pragma: no cover - exercised only without numba
    joseph_csr = joseph_numba = None

__all__ = ["RayTransform", "BACKENDS", "available_memory"]

BACKENDS = ("auto", "numba", "sparse")


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, op):  # noqa: D102
        ctx.op = op
        return op._apply_forward(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return _BackProject.apply(grad, ctx.op), None


class _BackProject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, op):  # noqa: D102
        ctx.op = op
        return op._apply_adjoint(y)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return _Project.apply(grad, ctx.op), None


class RayTransform(LinearOperator):
    r"""Discrete X-ray transform along a fixed set of rays (Joseph's projector).

    .. math:: y_{a,k} = \int_{\text{ray}(a,k)} f\,dt \approx (A x)_{a,k}

    Parameters
    ----------
    image_size : int
        ``N``: images are ``N x N`` pixels.
    n_angles, n_detectors : int
        Sinogram shape.
    origin, direction : torch.Tensor
        float64 ``(n_angles * n_detectors, 2)`` rays (angle-major), physical units.
    pixel_size : float
        Pixel side in the length unit of the geometry.
    backend : {"auto", "numba", "sparse"}
        See the module docstring.

    Input ``(batch, 1, N, N)`` real; output ``(batch, 1, n_angles, n_detectors)`` in units of
    (input units) x (length unit).
    """

    def __init__(
        self,
        image_size: int,
        n_angles: int,
        n_detectors: int,
        origin: torch.Tensor,
        direction: torch.Tensor,
        pixel_size: float,
        backend: str = "auto",
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        if backend == "numba" and joseph_numba is None:
            raise ValueError("backend: 'numba' requested but numba is not installed; install it "
                             "with pip install 'diffinv[ct]'")
        self.image_size = int(image_size)
        self.n_angles = int(n_angles)
        self.n_detectors = int(n_detectors)
        self.pixel_size = float(pixel_size)
        self.backend = backend
        self.in_shape = (1, self.image_size, self.image_size)
        self.out_shape = (1, self.n_angles, self.n_detectors)
        # Geometry is kept in float64 on the CPU; matrices are cached per device and dtype.
        self._params = joseph_sparse.ray_parameters(origin, direction, image_size, pixel_size)
        self._params_np = None if joseph_numba is None else joseph_numba.ParamsCache(self._params)
        self._origin = origin
        self._direction = direction
        self._matrices: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    # -- backend plumbing ---------------------------------------------------------------
    #: ``auto`` uses the sparse matrices on the CPU up to this many (estimated) entries
    #: (2 per ray and step, about 8 bytes each in float32, twice with the transpose).
    sparse_auto_max_entries: int = 40_000_000
    #: ``auto`` also needs the sparse pair to fit in this fraction of the available memory.
    sparse_auto_memory_fraction: float = 0.25

    def memory_estimate(
        self, backend: str, batch: int = 1, dtype: torch.dtype = torch.float32
    ) -> int:
        """Bytes a backend needs: the cached pair for ``"sparse"`` (an upper bound), the
        per-call buffers for ``"numba"`` (a batch of ``batch``, all threads)."""
        item = torch.empty((), dtype=dtype).element_size()
        n = self.image_size
        if backend == "sparse":
            entries = 2 * self.n_angles * self.n_detectors * n
            index = 4 if entries < 2**31 - 1 else 8
            return 2 * entries * (index + item) + 8 * (self.n_angles * self.n_detectors + n * n)
        if backend == "numba":
            threads = get_threads()
            return 2 * (n + 2) * n * int(batch) * item * (1 + max(1, threads))
        raise ValueError(f"backend: expected 'sparse' or 'numba', got {backend!r}")

    def backend_for(self, t: torch.Tensor) -> str:
        """The backend (``"numba"`` or ``"sparse"``) that runs for a tensor like ``t``."""
        if self.backend == "auto":
            if t.device.type != "cpu" or joseph_numba is None:
                return "sparse"
            key = (str(t.device), t.dtype)
            chosen = self.__dict__.setdefault("_auto_choice", {})
            if key not in chosen:
                entries = 2 * self.n_angles * self.n_detectors * self.image_size
                fits = self.memory_estimate("sparse", dtype=t.dtype) <= (
                    self.sparse_auto_memory_fraction * available_memory()
                )
                small = entries <= self.sparse_auto_max_entries
                chosen[key] = "sparse" if (small and fits) or key in self._matrices else "numba"
            return chosen[key]
        if self.backend == "numba" and t.device.type != "cpu":
            raise ValueError("backend: 'numba' runs on CPU only; use 'sparse' or 'auto' on GPU")
        return self.backend

    def cache_bytes(self, device: torch.device | str, dtype: torch.dtype) -> int:
        """Upper bound on the bytes of the sparse ``(A, A^T)`` this operator caches when applied
        on ``device`` to ``dtype`` tensors (0 when the on-the-fly numba kernels run instead):
        2 entries per ray and step, each a value and an index of up to 8 bytes, twice."""
        if self.backend_for(torch.empty(0, device=device)) != "sparse":
            return 0
        entries = 2 * self.n_angles * self.n_detectors * self.image_size
        item = torch.empty((), dtype=dtype).element_size()
        return 2 * entries * (item + 8)

    def matrices(
        self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse CSR ``(A, A^T)`` on ``device``/``dtype`` (built on first use, then cached)."""
        device = torch.device(device)
        key = (str(device), dtype)
        if key not in self._matrices:
            if device.type == "cpu" and joseph_numba is not None:
                self._matrices[key] = _csr_pair_numba(self._params, self.image_size, dtype)
            else:
                self._matrices[key] = joseph_sparse.build_matrix(
                    self._origin, self._direction, self.image_size, self.pixel_size, dtype, device
                )
        return self._matrices[key]

    def _apply_forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype not in (torch.float32, torch.float64):  # half precision: compute in float32
            return self._apply_forward(x.float()).to(x.dtype)
        flat = x.detach().reshape(x.shape[0], -1)
        if self.backend_for(x) == "numba":
            out = joseph_numba.forward(flat.contiguous(), self._params_np, self.image_size)
        else:
            A, _ = self.matrices(x.device, x.dtype)
            out = _sparse_apply(A, flat)
        return out.reshape(x.shape[0], 1, self.n_angles, self.n_detectors).contiguous()

    def _apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        if y.dtype not in (torch.float32, torch.float64):
            return self._apply_adjoint(y.float()).to(y.dtype)
        flat = y.detach().reshape(y.shape[0], -1)
        if self.backend_for(y) == "numba":
            out = joseph_numba.adjoint(flat.contiguous(), self._params_np, self.image_size)
        else:
            _, At = self.matrices(y.device, y.dtype)
            out = _sparse_apply(At, flat)
        return out.reshape(y.shape[0], 1, self.image_size, self.image_size).contiguous()

    # -- validation ---------------------------------------------------------------------
    def _check(self, t: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.is_complex() or not t.is_floating_point():
            raise ValueError(f"{name}: expected a real floating-point tensor, got {t.dtype}")
        if t.ndim != 4 or tuple(t.shape[1:]) != shape:
            raise ValueError(
                f"{name}: expected shape (batch, {', '.join(map(str, shape))}), "
                f"got {tuple(t.shape)}"
            )

    # -- LinearOperator -------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Line integrals ``(batch, 1, n_angles, n_detectors)`` of images ``(batch, 1, N, N)``."""
        self._check(x, self.in_shape, "x")
        return _Project.apply(x, self)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Exact transpose (unfiltered back-projection), ``(batch, 1, N, N)``."""
        self._check(y, self.out_shape, "y")
        return _BackProject.apply(y, self)

    def to(self, device: torch.device | str) -> RayTransform:
        """No-op apart from dropping the cached adjoint: tensors follow the input's device."""
        self.__dict__.pop("H", None)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, n_angles={self.n_angles}, "
            f"n_detectors={self.n_detectors}, pixel_size={self.pixel_size}, "
            f"backend={self.backend!r})"
        )


def _sparse_apply(M: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``(M @ flat^T)^T`` for a sparse ``M`` and a batch ``flat`` of shape ``(B, n)``; on the
    CPU with as many torch threads as its ``nnz * B`` multiply-adds are worth
    (:func:`diffinv.threads.work_threads`: serial for small images).  One CPU image that
    the thread policy runs on one thread takes scipy's (serial) CSR product on the same
    arrays (no copy), 1.3-1.4x faster than ``torch.sparse.mm`` for one column
    (benchmarks/README.md, "CT"); batches, and single images given several threads, stay
    in torch, whose product over several columns is the faster one."""
    if (M.device.type == "cpu" and flat.shape[0] == 1 and M.layout == torch.sparse_csr
            and threads_for(M._nnz()) == 1):
        mat = scipy.sparse.csr_matrix(
            (M.values().numpy(), M.col_indices().numpy(), M.crow_indices().numpy()),
            shape=tuple(M.shape), copy=False,
        )
        return torch.from_numpy(np.asarray(mat @ flat[0].numpy())).unsqueeze(0)
    rhs = flat.transpose(0, 1).contiguous()
    if M.device.type != "cpu":
        return torch.sparse.mm(M, rhs).transpose(0, 1)
    with work_threads(M._nnz() * flat.shape[0]):
        return torch.sparse.mm(M, rhs).transpose(0, 1)


def _csr_pair_numba(params, image_size: int, dtype: torch.dtype):
    """``(A, A^T)`` as torch sparse CSR on the CPU, written in place by numba (no peak)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    pair = joseph_csr.csr_pair_arrays(params, image_size, np_dtype)
    n_rays = pair[0][0].shape[0] - 1
    shapes = ((n_rays, image_size**2), (image_size**2, n_rays))

    def to_torch(arrays, shape) -> torch.Tensor:
        indptr, cols, vals = arrays
        with warnings.catch_warnings():  # torch flags sparse CSR as beta
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(indptr.astype(cols.dtype)),
                torch.from_numpy(cols),
                torch.from_numpy(vals).to(dtype),
                size=shape,
            )

    return to_torch(pair[0], shapes[0]), to_torch(pair[1], shapes[1])


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; 8 GiB if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 << 30


def default_n_detectors(image_size: int, pixel_size: float, detector_spacing: float) -> int:
    """Detector cells covering the image diagonal: ``ceil(sqrt(2) N pixel / spacing)``."""
    return int(math.ceil(math.sqrt(2.0) * image_size * pixel_size / detector_spacing - 1e-9))
