"""MRI operator speed and accuracy: forward + adjoint for 8 coils at 256 x 256 on CPU.

Cartesian: :class:`MultiCoilMRI` against ``sigpy.mri.linop.Sense`` (same FFT convention).
Non-Cartesian (golden-angle radial, ceil(pi N / 2) spokes x 2N samples): NonCartesianMRI with
each NUFFT backend against ``sigpy.mri.linop.Sense`` (default NUFFT: oversampling 1.25,
width 4) and against finufft called directly on NumPy arrays.  Accuracy is the relative
error of the forward transform against finufft at eps = 1e-12 in float64 (the exact-DFT
reference is too slow at this size; finufft agrees with the exact DFT to ~1e-12 at small
sizes, see the tests).  Times are the best of repeats in one run (robust on a shared
machine); ratios are ours / reference.

Default 1 thread for torch and finufft (NumPy/sigpy FFTs are single-threaded; on a busy
machine OpenMP threads in torch also oversubscribe badly).

Run: ``PYTHONPATH=src python benchmarks/mri_operators.py [--threads 1] [--size 256]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def timeit(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import finufft
    import sigpy
    import sigpy.mri.linop as splinop

    from diffinv.operators.mri import (
        MultiCoilMRI,
        NonCartesianMRI,
        birdcage_maps,
        cartesian_mask,
        radial_trajectory,
    )

    n, c = args.size, args.coils
    maps = birdcage_maps((n, n), c, dtype=torch.complex64)
    rng = np.random.default_rng(0)
    x_np = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    x = torch.from_numpy(x_np)[None, None]
    print(f"# {c} coils, {n}x{n}, complex64, {args.threads} threads; time = forward + adjoint")

    # -- Cartesian -----------------------------------------------------------------------------
    mask = cartesian_mask((n, n), 4, 0.08, seed=0)
    ours = MultiCoilMRI(maps, mask)
    ref = splinop.Sense(maps.numpy(), weights=mask.numpy().astype(np.float32))
    y_np = ref * x_np
    y = torch.from_numpy(y_np)[None]
    t_ours = timeit(lambda: ours.adjoint(ours(x)), args.repeat)
    t_ref = timeit(lambda: ref.H * (ref * x_np), args.repeat)
    err = np.linalg.norm(ours(x)[0].numpy() - y_np) / np.linalg.norm(y_np)
    print(f"cartesian  MultiCoilMRI {t_ours * 1e3:8.1f} ms | sigpy Sense {t_ref * 1e3:8.1f} ms"
          f" | ratio {t_ours / t_ref:5.2f} | rel. diff {err:.1e}")
    t_norm = timeit(lambda: ours.normal(x), args.repeat)
    print(f"cartesian  normal() {t_norm * 1e3:8.1f} ms vs adjoint(forward) {t_ours * 1e3:8.1f} ms")
    del y

    # -- non-Cartesian ---------------------------------------------------------------------------
    n_spokes = int(np.ceil(np.pi / 2 * n))
    om = radial_trajectory(n_spokes, 2 * n)
    k = om.shape[0]
    om32 = om.to(torch.float32).numpy()
    x0, x1 = om32[:, 0].copy(), om32[:, 1].copy()
    maps_np = maps.numpy()
    scale = 1.0 / n

    def finufft_direct():
        f = finufft.nufft2d2(x0, x1, maps_np * x_np, eps=1e-6, isign=-1, nthreads=args.threads)
        g = finufft.nufft2d1(x0, x1, f * scale, (n, n), eps=1e-6, isign=1,
                             nthreads=args.threads)
        return (maps_np.conj() * g * scale).sum(0)

    # float64 reference forward
    om64 = om.numpy()
    ref_fwd = finufft.nufft2d2(om64[:, 0].copy(), om64[:, 1].copy(),
                               (maps_np * x_np).astype(np.complex128), eps=1e-12,
                               isign=-1) * scale
    t_fin = timeit(finufft_direct, args.repeat)
    coord = om64 * n / (2 * np.pi)
    sp_op = splinop.Sense(maps_np, coord=coord.astype(np.float32))
    t_sp = timeit(lambda: sp_op.H * (sp_op * x_np), args.repeat)
    err_sp = np.linalg.norm(sp_op * x_np - ref_fwd) / np.linalg.norm(ref_fwd)
    print(f"non-cartesian radial {n_spokes} spokes x {2 * n} = {k} samples")
    print(f"  finufft direct (eps 1e-6)     {t_fin * 1e3:8.1f} ms | rel. err "
          f"{np.linalg.norm(finufft.nufft2d2(x0, x1, maps_np * x_np, eps=1e-6) * scale - ref_fwd) / np.linalg.norm(ref_fwd):.1e}")  # noqa: E501
    print(f"  sigpy Sense (default NUFFT)   {t_sp * 1e3:8.1f} ms | rel. err {err_sp:.1e}")
    for backend in ("finufft", "torchkbnufft"):
        op = NonCartesianMRI(maps, om.to(torch.float32), backend=backend)
        reps = args.repeat if backend == "finufft" else 1  # torchkbnufft is slow on CPU
        t = timeit(lambda op=op: op.adjoint(op(x)), reps)
        e = np.linalg.norm(op(x)[0].numpy() - ref_fwd) / np.linalg.norm(ref_fwd)
        print(f"  NonCartesianMRI[{backend:12s}] {t * 1e3:8.1f} ms | rel. err {e:.1e} | "
              f"ratio vs finufft direct {t / t_fin:5.2f} | vs sigpy {t / t_sp:5.2f}")
        if backend == "finufft":
            op.toeplitz_kernel(torch.complex64)
            t_toep = timeit(lambda op=op: op.normal(x), args.repeat)
            print(f"  Toeplitz normal()             {t_toep * 1e3:8.1f} ms | ratio vs "
                  f"adjoint(forward) {t_toep / t:5.2f}")
    print(f"# sigpy {sigpy.__version__}, finufft {finufft.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
