"""Per-run exactness of SMC on the MCGdiff Gaussian-mixture benchmark (issue 15).

:mod:`exactness` reports the RMS over runs; a user runs once.  Here each of ``--runs``
independent SMC runs (``n_runs`` batched, ``N`` particles each) gets its own figure, the SW to
10,000 exact posterior draws over the noise floor (RMS SW of 16 exact samples of size ``N``,
as in :mod:`exactness`), and per seed we print the min / median / max over the runs.  Beside
it the same statistic for single *exact* samples of size ``N`` (min / median / max over as
many draws): the spread that the metric itself has, which bounds what any sampler's worst
single run can show.  Problems: dx = 8 with dy = 1, 2, 4 and the image-shaped 1x16x16 with
dy = 16 (``--image``), at most 100 steps and 1,000 particles.

Variants (``--variants``): ``default`` (``smc`` with its defaults: the Tweedie kernel and local
potentials here), ``resample1`` (resampling every step), ``midpoint``
(``kernel="midpoint", potential="local"``).

Usage (1 thread)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/exactness_runs.py \
        [--particles 1000] [--steps 100] [--runs 10] [--seeds 3] [--dys 1 2 4] [--image]
"""

from __future__ import annotations

import argparse
import time

import torch
from exactness import (
    N_FLOOR,
    N_REF,
    exact_sws,
    grid_mixture,
    random_problem,
    rms,
    run_solver,
    split_runs,
    sw,
)

VARIANTS = {
    "default": {},
    "resample1": {"ess_threshold": 1.0},
    "midpoint": {"kernel": "midpoint", "potential": "local"},
}


def spread(values: list[float]) -> str:
    """``min / median / max`` (lower median for even counts)."""
    v = sorted(values)
    return f"{v[0]:5.2f} / {v[(len(v) - 1) // 2]:5.2f} / {v[-1]:5.2f}"


def per_run_table(shape, dys, seeds, n, steps, runs, variants) -> list[tuple]:
    """Print and return ``(shape, dy, seed, variant, ratios)`` rows."""
    rows = []
    for dy in dys:
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            prior = grid_mixture(shape, g)
            problem = random_problem(prior, dy, g)
            post = prior.posterior(problem)
            ref = post.sample(N_REF, g)
            sws = exact_sws(post, ref, n, seed, N_FLOOR + runs)
            floor = rms(sws[:N_FLOOR])
            exact = [s / floor for s in sws[N_FLOOR:]]
            print(f"  x{str(shape):9s} dy={dy:<3d} seed={seed:<3d} {'exact sample':12s} "
                  f"SW/floor min/med/max {spread(exact)}")
            rows.append((shape, dy, seed, "exact", exact))
            for name in variants:
                p, wall = run_solver("smc", problem, prior, runs * n, steps, seed,
                                     n_runs=runs, **VARIANTS[name])
                vals = [sw(x, ref, w, seed=seed) / floor for x, w in split_runs(p, runs)]
                print(f"  x{str(shape):9s} dy={dy:<3d} seed={seed:<3d} {name:12s} "
                      f"SW/floor min/med/max {spread(vals)}  wall/run={wall / runs:5.2f}s "
                      f"kernel={p.diagnostics.get('kernel')}")
                rows.append((shape, dy, seed, name, vals))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--particles", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dys", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--image", action="store_true", help="also the 1x16x16 problem (dy=16)")
    ap.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    print(f"N={args.particles} steps={args.steps} runs={args.runs} seeds={args.seeds} "
          f"variants={args.variants} (float64, 1 thread)")
    rows = per_run_table((8,), args.dys, range(args.seeds), args.particles, args.steps,
                         args.runs, args.variants)
    if args.image:
        rows += per_run_table((1, 16, 16), [16], range(1), args.particles, args.steps,
                              args.runs, args.variants)
    print("\nWorst single run over all problems:")
    for name in ["exact", *args.variants]:
        worst = max(max(r[4]) for r in rows if r[3] == name)
        print(f"  {name:12s} {worst:5.2f}")
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
