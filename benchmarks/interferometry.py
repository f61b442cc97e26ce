"""Visibility operator speed: forward + adjoint of ``Visibilities`` (exact DFT and the
finufft NUFFT path) against finufft called directly on the same points, as time ratios.

Run: ``PYTHONPATH=src python benchmarks/interferometry.py``.  The (u, v) coverage is the
EHT 2017 array observing M87 for a day (10 s records every 2 minutes), float64, batch 4,
accuracy 1e-12 for both NUFFTs.  Ratios > 1 mean slower than direct finufft.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from diffinv.operators.interferometry import Array, Observation, Visibilities


def best_time(fn, repeat: int = 5) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    torch.set_num_threads(1)
    obs = Observation.simulate(
        Array.eht2017(),
        187.7059,
        12.3911,
        "2017-04-05",
        integration_s=10.0,
        scan_interval_s=120.0,
    )
    m = len(obs)
    batch = 4
    print(f"EHT 2017 / M87 coverage: {m} visibilities, batch {batch}, float64, 1 thread")
    print(
        f"{'N':>5} {'direct finufft [ms]':>20} {'NUFFT op [ms]':>14} {'ratio':>6} "
        f"{'DFT op [ms]':>12} {'ratio':>8}"
    )
    for n in (64, 256):
        bench(obs, n, 160.0 if n == 64 else 640.0, batch)


def bench(obs: Observation, n: int, fov: float, batch: int) -> None:
    """Time forward + adjoint at image size ``n`` and print one table row."""
    import finufft

    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, n, n, dtype=torch.float64, generator=g)
    dft = Visibilities(obs, n, fov, method="dft")
    nu = Visibilities(obs, n, fov, method="nufft")
    y = dft(x)
    d = dft.pixel_size_rad
    xu = 2 * np.pi * d * obs.u.numpy()
    xv = 2 * np.pi * d * obs.v.numpy()
    c = x[:, 0].numpy().astype(np.complex128)
    yn = y.numpy()

    def direct():
        finufft.nufft2d2(xv, xu, c, isign=-1, eps=1e-12, nthreads=1)
        finufft.nufft2d1(xv, xu, yn, (n, n), isign=1, eps=1e-12, nthreads=1)

    t_ref = best_time(direct)
    t_nu = best_time(lambda: (nu(x), nu.adjoint(y)))
    t_dft = best_time(lambda: (dft(x), dft.adjoint(y)), repeat=3)
    err = float((nu(x) - y).abs().max() / y.abs().max())
    print(
        f"{n:>5} {1e3 * t_ref:>20.2f} {1e3 * t_nu:>14.2f} {t_nu / t_ref:>6.2f} "
        f"{1e3 * t_dft:>12.2f} {t_dft / t_ref:>8.2f}   (NUFFT vs DFT rel. error {err:.1e})"
    )


if __name__ == "__main__":
    main()
