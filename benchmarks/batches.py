"""Do batches amortise?  time(batch 8) / time(batch 1) for every operator and size (issue 18).

Issue 18 asks that a batch of 8 costs at most 3x one image, for CT up to 512 x 512 and
Cartesian MRI up to 320 x 320 with 16 coils.  For each case the batch-1 and batch-8 calls
run in turn (interleaved) ``--repeats`` times after a warm-up; the script prints the minimum
CPU time (``time.process_time``, so that other jobs on a shared machine count little) and
the minimum wall time of each, and the ratio of the CPU times.  With ``--threads 1`` (the
default) CPU time is the time of the one thread.

Cases: CT parallel beam (180 views over [0, pi), N detectors) on the ``numba`` backend
(forward, adjoint, FBP) and the ``sparse`` backend (forward, adjoint; 512 x 512 skipped:
its matrix pair needs about 1.2 GB and a long build, ``auto`` picks ``numba`` there); CT
fan beam (``numba``; 360 views over 2 pi, source at 2N, detector of 2N cells at 1N);
Cartesian ``MultiCoilMRI`` with 16 birdcage coils, 4x mask (``forward`` then ``adjoint``,
and ``normal``), complex64.  CT images are float32.

Non-Cartesian MRI: ``NonCartesianMRI`` with the same coils on a golden-angle radial
trajectory (``round(N pi / 8)`` spokes of ``2N`` samples, about 4x undersampled), default
NUFFT backend, ``adjoint(forward)`` and the Toeplitz ``normal``.  Interferometry:
``Visibilities`` on the simulated EHT 2017 M87 coverage (as ``interferometry.py``), default
``method``, float64, ``adjoint(forward)``.

Cartesian MRI cannot reach 3x on one thread by construction: per image it runs one FFT
pair per coil, work that grows linearly with the batch, so its rows show how close the
per-image cost stays to batch 1 (8/1 = 8 means no overhead saved).  FBP shares the
back-projection's taps across the batch; its ramp-filter FFTs grow with the batch.

Run:  PYTHONPATH=src python benchmarks/batches.py [--threads 1] [--repeats 3]
      [--ct-sizes 128 256 512] [--mri-sizes 128 256 320] [--vis-sizes 64 256]
      [--only ct|mri|radial|vis]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

TARGET = 3.0


def interleaved(fns, repeats: int) -> tuple[list[float], list[float]]:
    """Minimum CPU and wall seconds of each function, the functions run in turn."""
    for fn in fns:
        fn()
    cpu, wall = [math.inf] * len(fns), [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            c, w = time.process_time(), time.perf_counter()
            fn()
            cpu[i] = min(cpu[i], time.process_time() - c)
            wall[i] = min(wall[i], time.perf_counter() - w)
    return cpu, wall


def report(name: str, make_call, repeats: int, threads: int) -> float:
    """Time ``make_call(1)`` against ``make_call(8)``; print one row; return the ratio."""
    calls = [make_call(1), make_call(8)]
    cpu, wall = interleaved(calls, repeats)
    ratio = cpu[1] / cpu[0]
    flag = "ok" if ratio <= TARGET else "OVER"
    print(f"| {name} | {threads} | {cpu[0] * 1e3:.1f} | {cpu[1] * 1e3:.1f} | {ratio:.2f} | "
          f"{wall[1] / wall[0]:.2f} | {flag} |", flush=True)
    return ratio


def ct_cases(sizes, repeats: int, threads: int) -> None:
    from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon

    rng = np.random.default_rng(0)

    def images(b, n):
        return torch.from_numpy(rng.random((b, 1, n, n)).astype(np.float32))

    for n in sizes:
        angles = torch.linspace(0, math.pi, 181)[:-1]
        ops = [("parallel numba", ParallelBeamRadon(n, angles, n_detectors=n, backend="numba"))]
        if n <= 256:
            ops.append(("parallel sparse", ParallelBeamRadon(n, angles, n_detectors=n,
                                                             backend="sparse")))
        ops.append(("fan numba", FanBeamRadon(
            n, torch.arange(360, dtype=torch.float64) * (2 * math.pi / 360),
            source_origin=2.0 * n, origin_detector=1.0 * n, n_detectors=2 * n,
            detector_spacing=1.0, backend="numba")))
        for label, op in ops:
            x = {b: images(b, n) for b in (1, 8)}
            y = {b: op(x[b]) for b in (1, 8)}
            report(f"CT {label} {n}x{n}/{op.n_angles} fwd",
                   lambda b, op=op, x=x: (lambda: op(x[b])), repeats, threads)
            report(f"CT {label} {n}x{n}/{op.n_angles} adj",
                   lambda b, op=op, y=y: (lambda: op.adjoint(y[b])), repeats, threads)
            if label == "parallel numba":
                report(f"CT {label} {n}x{n}/{op.n_angles} FBP",
                       lambda b, op=op, y=y: (lambda: op.fbp(y[b])), repeats, threads)
            del x, y


def mri_cases(sizes, coils: int, repeats: int, threads: int) -> None:
    from diffinv.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask

    rng = np.random.default_rng(0)
    for n in sizes:
        maps = birdcage_maps((n, n), coils, dtype=torch.complex64)
        op = MultiCoilMRI(maps, cartesian_mask((n, n), 4, 0.08, seed=0))
        x = {b: torch.from_numpy((rng.standard_normal((b, 1, n, n))
                                  + 1j * rng.standard_normal((b, 1, n, n))).astype(np.complex64))
             for b in (1, 8)}
        report(f"MRI Cartesian {n}x{n}, {coils} coils, adj(fwd)",
               lambda b, op=op, x=x: (lambda: op.adjoint(op(x[b]))), repeats, threads)
        report(f"MRI Cartesian {n}x{n}, {coils} coils, normal",
               lambda b, op=op, x=x: (lambda: op.normal(x[b])), repeats, threads)


def noncartesian_cases(sizes, coils: int, repeats: int, threads: int) -> None:
    from diffinv.operators.mri import NonCartesianMRI, birdcage_maps, radial_trajectory

    rng = np.random.default_rng(0)
    for n in sizes:
        maps = birdcage_maps((n, n), coils, dtype=torch.complex64)
        # 4x radially undersampled: n/4 * pi/2 golden-angle spokes of 2n readout samples
        traj = radial_trajectory(max(1, round(n * math.pi / 8)), 2 * n, dtype=torch.float32)
        op = NonCartesianMRI(maps, traj)
        x = {b: torch.from_numpy((rng.standard_normal((b, 1, n, n))
                                  + 1j * rng.standard_normal((b, 1, n, n))).astype(np.complex64))
             for b in (1, 8)}
        label = f"MRI radial {n}x{n}, {coils} coils, {traj.shape[0]} samples"
        report(f"{label}, adj(fwd)",
               lambda b, op=op, x=x: (lambda: op.adjoint(op(x[b]))), repeats, threads)
        report(f"{label}, normal (Toeplitz)",
               lambda b, op=op, x=x: (lambda: op.normal(x[b])), repeats, threads)


def interferometry_cases(sizes, repeats: int, threads: int) -> None:
    from diffinv.operators.interferometry import Array, Observation, Visibilities

    obs = Observation.simulate(Array.eht2017(), 187.7059, 12.3911, "2017-04-05",
                               integration_s=10.0, scan_interval_s=120.0)
    rng = np.random.default_rng(0)
    for n in sizes:
        op = Visibilities(obs, n, 160.0 * n / 64)
        x = {b: torch.from_numpy(rng.random((b, 1, n, n))) for b in (1, 8)}
        report(f"interferometry {n}x{n}, {len(obs)} visibilities, default method, adj(fwd)",
               lambda b, op=op, x=x: (lambda: op.adjoint(op(x[b]))), repeats, threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ct-sizes", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--mri-sizes", type=int, nargs="+", default=[128, 256, 320])
    ap.add_argument("--coils", type=int, default=16)
    ap.add_argument("--vis-sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--only", choices=("ct", "mri", "radial", "vis"), default=None)
    args = ap.parse_args()
    from diffinv.threads import set_threads

    set_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# threads={args.threads}, repeats={args.repeats}, load average {load:.1f}; "
          f"target: batch 8 CPU time <= {TARGET:g} x batch 1")
    print("| case | threads | batch 1 CPU ms | batch 8 CPU ms | 8/1 CPU | 8/1 wall | <= 3 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    if args.only in (None, "ct"):
        ct_cases(args.ct_sizes, args.repeats, args.threads)
    if args.only in (None, "mri"):
        mri_cases(args.mri_sizes, args.coils, args.repeats, args.threads)
    if args.only in (None, "radial"):
        noncartesian_cases(args.mri_sizes, args.coils, args.repeats, args.threads)
    if args.only in (None, "vis"):
        interferometry_cases(args.vis_sizes, args.repeats, args.threads)


if __name__ == "__main__":
    main()
