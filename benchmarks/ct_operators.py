"""Speed of the CT projectors against ASTRA's CPU projectors and scikit-image, in one run.

256 x 256 image, 180 angles over [0, pi), 256 detector cells of one pixel (the usual ASTRA
set-up), float32.  Times are the best of ``--repeats`` runs after a warm-up; every figure is
per image, and ratios are ``reference time / our time`` (above 1: ours is faster).  ASTRA
and scikit-image work on one image at a time, so their batch-8 figures are 8 calls.  At this
size the default ``backend="auto"`` is the sparse CSR pair (built once per geometry).

FBP (ramp filter, parallel beam, ``backend="auto"``) is timed against ASTRA's CPU ``FBP``
algorithm with its ``linear`` (Joseph) projector, interleaved in one loop, at equal threads
(ASTRA's CPU FBP is single-threaded, so compare at ``--threads 1``).

Run:  PYTHONPATH=src python benchmarks/ct_operators.py [--threads 1] [--repeats 5]
      PYTHONPATH=src python benchmarks/ct_operators.py --fbp-only --size 512 --angles 720
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from diffinv.operators.ct import FanBeamRadon, ParallelBeamRadon


def best_time(fn, repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def interleaved_best(fns, repeats: int) -> list[float]:
    """Best time of each function, the functions run in turn in every repeat."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def fbp_vs_astra(n: int, angles: torch.Tensor, threads: int, repeats: int) -> None:
    """Print our FBP time against ASTRA's CPU FBP (same sinogram, ramp filter)."""
    op = ParallelBeamRadon(n, angles, n_detectors=n)
    x = torch.from_numpy(np.random.default_rng(1).random((1, 1, n, n)).astype(np.float32))
    y = op(x)
    t0 = time.perf_counter()
    op.fbp(y)  # first call: builds the sparse matrix when auto picks it
    setup = time.perf_counter() - t0
    try:
        import astra
    except ImportError:
        print("astra-toolbox not installed: FBP comparison skipped")
        return
    vol = astra.create_vol_geom(n, n)
    geom = astra.create_proj_geom("parallel", 1.0, n, angles.numpy())
    pid = astra.create_projector("linear", geom, vol)
    sid = astra.data2d.create("-sino", geom, y[0, 0].numpy())
    rid = astra.data2d.create("-vol", vol)
    cfg = astra.astra_dict("FBP")
    cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid)
    aid = astra.algorithm.create(cfg)
    t_ours, t_astra = interleaved_best(
        [lambda: op.fbp(y), lambda: astra.algorithm.run(aid)], repeats
    )
    rec = astra.data2d.get(rid)
    ours = op.fbp(y)[0, 0].numpy()
    rel = float(np.linalg.norm(ours - rec) / np.linalg.norm(rec))
    print(
        f"FBP {n}x{n}, {angles.numel()} angles, threads={threads}, backend="
        f"{op.backend_for(y)} (first call incl. set-up {setup:.2f} s): diffinv "
        f"{t_ours * 1e3:.1f} ms, ASTRA CPU FBP {t_astra * 1e3:.1f} ms, ratio "
        f"{t_ours / t_astra:.2f} (<= 1.0 target); relative difference {rel:.3f}"
    )
    astra.algorithm.delete(aid)
    astra.data2d.delete([sid, rid])
    astra.projector.delete(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--angles", type=int, default=180)
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fbp-only", action="store_true", help="time only FBP vs ASTRA")
    args = parser.parse_args()
    from diffinv.threads import set_threads

    set_threads(args.threads)
    n, n_ang = args.size, args.angles
    angles = torch.arange(n_ang, dtype=torch.float64) * (math.pi / n_ang)
    fbp_vs_astra(n, angles, args.threads, args.repeats)
    if args.fbp_only:
        return
    rng = np.random.default_rng(0)
    img = rng.random((8, n, n)).astype(np.float32)
    rows: list[tuple[str, int, float, float]] = []  # name, batch, fwd s/img, adj s/img

    for backend in ("numba", "sparse"):
        op = ParallelBeamRadon(n, angles, n_detectors=n, backend=backend)
        t0 = time.perf_counter()
        if backend == "sparse":
            op.matrices("cpu", torch.float32)
        setup = time.perf_counter() - t0
        for b in (1, 8):
            x = torch.from_numpy(img[:b, None].copy())
            y = op(x)
            tf = best_time(lambda: op(x), args.repeats) / b  # noqa: B023
            ta = best_time(lambda: op.adjoint(y), args.repeats) / b  # noqa: B023
            rows.append((f"diffinv parallel ({backend})", b, tf, ta))
        if backend == "sparse":
            print(f"sparse matrix build (once per geometry): {setup:.2f} s")

    fan = FanBeamRadon(
        n,
        torch.arange(n_ang, dtype=torch.float64) * (2 * math.pi / n_ang),
        source_origin=2.0 * n,
        origin_detector=1.0 * n,
        n_detectors=2 * n,
        detector_spacing=1.0,
    )
    for b in (1, 8):
        x = torch.from_numpy(img[:b, None].copy())
        y = fan(x)
        tf = best_time(lambda: fan(x), args.repeats) / b  # noqa: B023
        ta = best_time(lambda: fan.adjoint(y), args.repeats) / b  # noqa: B023
        rows.append(("diffinv fan flat (numba, 2N cells)", b, tf, ta))

    refs: dict[str, tuple[float, float]] = {}
    try:
        import astra

        vol = astra.create_vol_geom(n, n)
        for kind in ("line", "linear"):
            geom = astra.create_proj_geom("parallel", 1.0, n, angles.numpy())
            pid = astra.create_projector(kind, geom, vol)
            w = astra.OpTomo(pid)
            v = img[0].ravel()
            s = w * v
            refs[f"ASTRA CPU parallel '{kind}'"] = (
                best_time(lambda: w * v, args.repeats),  # noqa: B023
                best_time(lambda: w.T * s, args.repeats),  # noqa: B023
            )
            astra.projector.delete(pid)
        geom = astra.create_proj_geom("fanflat", 1.0, 2 * n, fan.angles.numpy(), 2.0 * n, 1.0 * n)
        pid = astra.create_projector("line_fanflat", geom, vol)
        w = astra.OpTomo(pid)
        v = img[0].ravel()
        s = w * v
        refs["ASTRA CPU fanflat 'line_fanflat'"] = (
            best_time(lambda: w * v, args.repeats),
            best_time(lambda: w.T * s, args.repeats),
        )
        astra.projector.delete(pid)
    except ImportError:
        print("astra-toolbox not installed: ASTRA columns skipped")
    try:
        from skimage.transform import iradon, radon

        deg = np.rad2deg(angles.numpy())
        sk = radon(img[0], deg, circle=True)
        refs["scikit-image radon / iradon(filter=None)"] = (
            best_time(lambda: radon(img[0], deg, circle=True), args.repeats),
            best_time(lambda: iradon(sk, deg, circle=True, filter_name=None), args.repeats),
        )
    except ImportError:
        print("scikit-image not installed: skimage columns skipped")

    print(f"\n{n}x{n}, {n_ang} angles, float32, threads={args.threads}; ms per image")
    print(f"{'projector':44s} {'batch':>5s} {'forward':>9s} {'adjoint':>9s}")
    for name, b, tf, ta in rows:
        print(f"{name:44s} {b:5d} {tf * 1e3:9.1f} {ta * 1e3:9.1f}")
    for name, (tf, ta) in refs.items():
        print(f"{name:44s} {1:5d} {tf * 1e3:9.1f} {ta * 1e3:9.1f}")

    print("\nratios: reference time / diffinv time per image (> 1 means diffinv is faster)")
    ours = {(name, b): (tf, ta) for name, b, tf, ta in rows}
    for ref_name, (rf, ra) in refs.items():
        target = (
            "diffinv fan flat (numba, 2N cells)"
            if "fanflat" in ref_name
            else ("diffinv parallel (numba)")
        )
        for b in (1, 8):
            tf, ta = ours[(target, b)]
            print(
                f"{ref_name:44s} vs {target} batch {b}: forward x{rf / tf:5.2f}, "
                f"adjoint x{ra / ta:5.2f}"
            )
        if "fanflat" not in ref_name:
            for b in (1, 8):
                tf, ta = ours[("diffinv parallel (sparse)", b)]
                print(
                    f"{ref_name:44s} vs diffinv parallel (sparse) batch {b}: "
                    f"forward x{rf / tf:5.2f}, adjoint x{ra / ta:5.2f}"
                )


if __name__ == "__main__":
    main()
