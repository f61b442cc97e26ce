"""Speed of the CT projectors against ASTRA's CPU projectors and scikit-image, in one run.

256 x 256 image, 180 angles over [0, pi), 256 detector cells of one pixel (the usual ASTRA
set-up), float32.  All projector calls, ours and the references', run in turn in every
repeat (interleaved, so the machine's load hits them alike); the script prints the minimum
over ``--repeats`` of the wall time and of the CPU time (``time.process_time``), per image,
and ratios ``our time / reference time`` (below 1: ours is faster).  ASTRA
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


def interleaved_best(fns, repeats: int, clock=time.perf_counter) -> list[float]:
    """Best time of each function by ``clock``, the functions run in turn in every repeat."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = clock()
            fn()
            best[i] = min(best[i], clock() - t)
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
    pair = [lambda: op.fbp(y), lambda: astra.algorithm.run(aid)]
    t_ours, t_astra = interleaved_best(pair, repeats)
    c_ours, c_astra = interleaved_best(pair, repeats, clock=time.process_time)
    rec = astra.data2d.get(rid)
    ours = op.fbp(y)[0, 0].numpy()
    rel = float(np.linalg.norm(ours - rec) / np.linalg.norm(rec))
    print(
        f"FBP {n}x{n}, {angles.numel()} angles, threads={threads}, backend="
        f"{op.backend_for(y)} (first call incl. set-up {setup:.2f} s): diffinv "
        f"{t_ours * 1e3:.1f} ms, ASTRA CPU FBP {t_astra * 1e3:.1f} ms, ratio "
        f"{t_ours / t_astra:.2f} (<= 1.0 target); CPU time {c_ours * 1e3:.1f} against "
        f"{c_astra * 1e3:.1f} ms, ratio {c_ours / c_astra:.2f}; relative difference {rel:.3f}"
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
    # (name, batch, direction, fn): every projector call, ours and the references, timed
    # interleaved in one loop so that the machine's load hits all of them alike
    calls: list[tuple[str, int, str, object]] = []

    for backend in ("numba", "sparse"):
        op = ParallelBeamRadon(n, angles, n_detectors=n, backend=backend)
        t0 = time.perf_counter()
        if backend == "sparse":
            op.matrices("cpu", torch.float32)
        setup = time.perf_counter() - t0
        for b in (1, 8):
            x = torch.from_numpy(img[:b, None].copy())
            y = op(x)
            name = f"diffinv parallel ({backend})"
            calls.append((name, b, "fwd", lambda op=op, x=x: op(x)))
            calls.append((name, b, "adj", lambda op=op, y=y: op.adjoint(y)))
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
        name = "diffinv fan flat (numba, 2N cells)"
        calls.append((name, b, "fwd", lambda x=x: fan(x)))
        calls.append((name, b, "adj", lambda y=y: fan.adjoint(y)))

    refs: list[str] = []
    v = img[0].ravel()
    try:
        import astra

        vol = astra.create_vol_geom(n, n)
        geoms = [(f"ASTRA CPU parallel '{kind}'", kind,
                  astra.create_proj_geom("parallel", 1.0, n, angles.numpy()))
                 for kind in ("line", "linear")]
        geoms.append(("ASTRA CPU fanflat 'line_fanflat'", "line_fanflat",
                      astra.create_proj_geom("fanflat", 1.0, 2 * n, fan.angles.numpy(),
                                             2.0 * n, 1.0 * n)))
        for name, kind, geom in geoms:
            w = astra.OpTomo(astra.create_projector(kind, geom, vol))
            s = w * v
            calls.append((name, 1, "fwd", lambda w=w: w * v))
            calls.append((name, 1, "adj", lambda w=w, s=s: w.T * s))
            refs.append(name)
    except ImportError:
        print("astra-toolbox not installed: ASTRA columns skipped")
    try:
        from skimage.transform import iradon, radon

        deg = np.rad2deg(angles.numpy())
        sk = radon(img[0], deg, circle=True)
        name = "scikit-image radon / iradon(filter=None)"
        calls.append((name, 1, "fwd", lambda: radon(img[0], deg, circle=True)))
        calls.append((name, 1, "adj", lambda: iradon(sk, deg, circle=True, filter_name=None)))
        refs.append(name)
    except ImportError:
        print("scikit-image not installed: skimage columns skipped")

    wall = interleaved_best([c[3] for c in calls], args.repeats)
    cpu = interleaved_best([c[3] for c in calls], args.repeats, clock=time.process_time)
    per = {(name, b, d): (tw / b, tc / b)
           for (name, b, d, _), tw, tc in zip(calls, wall, cpu, strict=True)}

    print(f"\n{n}x{n}, {n_ang} angles, float32, threads={args.threads}; ms per image, "
          f"minimum of {args.repeats} interleaved repeats, wall (CPU)")
    print(f"{'projector':44s} {'batch':>5s} {'forward':>17s} {'adjoint':>17s}")
    for name, b in dict.fromkeys((c[0], c[1]) for c in calls):
        (fw, fc), (aw, ac) = per[(name, b, "fwd")], per[(name, b, "adj")]
        print(f"{name:44s} {b:5d} {fw * 1e3:8.1f} ({fc * 1e3:6.1f}) "
              f"{aw * 1e3:8.1f} ({ac * 1e3:6.1f})")

    print("\nratios: diffinv time per image / reference time (< 1 means diffinv is faster), "
          "wall (CPU)")
    for ref_name in refs:
        if "fanflat" in ref_name:
            targets = ["diffinv fan flat (numba, 2N cells)"]
        else:
            targets = ["diffinv parallel (numba)", "diffinv parallel (sparse)"]
        for target in targets:
            for b in (1, 8):
                parts = []
                for d in ("fwd", "adj"):
                    (ow, oc), (rw, rc) = per[(target, b, d)], per[(ref_name, 1, d)]
                    parts.append(f"{d} {ow / rw:5.2f} ({oc / rc:5.2f})")
                print(f"{target} batch {b} / {ref_name}: " + ", ".join(parts))

if __name__ == "__main__":
    main()
