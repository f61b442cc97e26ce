"""Exactness benchmark: every registered solver against exact Gaussian-mixture posteriors.

The MCGdiff setup (Cardoso et al. 2024, section 5): a 25-component Gaussian mixture with means
on a 5x5 grid of spacing 8 tiled over the dimensions, identity covariances and random weights;
a random ``A`` (dy x dx) with singular values ~ U(0, 1); ``sigma_y = U(0, 1) * max singular
value``.  The exact posterior is again a Gaussian mixture
(:meth:`GaussianMixturePrior.posterior`).

For each solver at the same number of denoiser evaluations (NFE) we print the sliced
Wasserstein distance (SW) to 10,000 exact posterior draws divided by that of an independent
exact sample of the same size as the solver's (the noise floor; 1.0 is perfect), plus NFE and
wall time.  The SW of a single sample set is a noisy number on these multimodal posteriors
(the mode weights of an exact sample of 500 fluctuate: one exact draw's ratio to a 3-draw
floor ranged from 0.4 to 2.8 on one problem), so both sides are averaged in the squared
sense: the figure is the RMS of the SW of ``--runs`` independent runs (SMC: ``n_runs``
batched runs of ``N`` particles; other solvers: ``runs * N`` chains split into groups of
``N``) over the RMS of 16 exact samples of size ``N``.  Beside it, the 90% quantile of the
same statistic for an exact sampler (``exact q90``: what a perfect sampler scores, the noise
of the metric itself), the worst single run, and an exact sampler's single-run q90.  Then:
the SMC error against the particle count, the 90% interval coverage of SMC on a Gaussian
problem, and deepinv's DPS / DiffPIR where deepinv imports.

Rows named ``solver[option=value]`` are the same solver with non-default options (see
``VARIANTS``; ``smc`` itself runs with the Tweedie kernel here, as the mixture prior has an
analytic Jacobian: its cost shows in the wall time, not in NFE).  Run
``python benchmarks/exactness.py --quick`` (2 seeds, 500 particles per run; ``--runs`` times
the old cost) or without ``--quick`` for 5 seeds, 2000 particles and a longer particle curve;
``--dx8-only --solvers smc`` for the SMC table alone (about 7 minutes for 5 seeds, three SMC
variants, 500 particles, 4 runs, on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

import diffinv
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.noise import GaussianNoise
from diffinv.operators.problem import InverseProblem
from diffinv.posterior import Posterior
from diffinv.priors import GaussianMixturePrior, GaussianPrior
from diffinv.solvers import available_solvers
from diffinv.testing.metrics import sliced_wasserstein

N_REF = 10_000
# extra configurations printed beside the registered solvers' defaults: label -> (solver, options)
VARIANTS = {
    "smc[kernel=midpoint]": ("smc", {"kernel": "midpoint", "potential": "adaptive"}),
    "smc[midpoint+local]": ("smc", {"kernel": "midpoint", "potential": "local"}),
    "smc[method=tds]": ("smc", {"method": "tds"}),
    "smc[tds+lipschitz=0]": ("smc", {"method": "tds", "lipschitz": 0.0}),  # paper's proposal
    "dps[likelihood]": ("dps", {"guidance": "likelihood"}),
}
N_PROJ = 200
N_FLOOR = 16  # exact samples averaged (RMS) into the noise floor
RUNS = 4  # independent runs per solver and problem; the figure is the RMS of their SW


def grid_mixture(shape: tuple[int, ...], g: torch.Generator) -> GaussianMixturePrior:
    """25 unit-covariance components at (8i, 8j, 8i, 8j, ...), i, j in -2..2, random weights."""
    dim = math.prod(shape)
    ij = torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)
    means = 8.0 * ij.repeat(1, (dim + 1) // 2)[:, :dim]
    weights = torch.rand(25, dtype=torch.float64, generator=g)
    eye = torch.eye(dim, dtype=torch.float64)
    return GaussianMixturePrior(weights, means.reshape(25, *shape), eye)


def random_problem(prior, dy: int, g: torch.Generator) -> InverseProblem:
    """A = U diag(s) V^T, s ~ U(0,1); sigma_y = U(0,1) * max(s); y from a prior draw."""
    shape = prior.event_shape
    dx = math.prod(shape)
    u, _ = torch.linalg.qr(torch.randn(dy, dy, dtype=torch.float64, generator=g))
    v, _ = torch.linalg.qr(torch.randn(dx, dx, dtype=torch.float64, generator=g))
    s = torch.rand(dy, dtype=torch.float64, generator=g)
    a = u @ torch.diag(s) @ v[:, :dy].T
    sigma_y = float(torch.rand((), dtype=torch.float64, generator=g)) * float(s.max())
    op = MatrixOperator(a, in_shape=shape)
    noise = GaussianNoise(sigma_y)
    x = prior.sample(1, g)
    return InverseProblem(op, noise, noise.sample(op(x), g))


def mixture_case(shape: tuple[int, ...], dy: int, seed: int):
    """The benchmark problem of one (shape, dy, seed): ``(prior, problem, exact posterior,
    N_REF exact reference samples)``, all drawn from one generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    prior = grid_mixture(shape, g)
    problem = random_problem(prior, dy, g)
    post = prior.posterior(problem)
    return prior, problem, post, post.sample(N_REF, g)


def sw(samples, ref, weights=None, seed=0) -> float:
    g = torch.Generator().manual_seed(seed)
    return sliced_wasserstein(samples, ref, x_weights=weights, n_projections=N_PROJ, generator=g)


def noise_floor(post, ref, n: int, seed: int, reps: int = N_FLOOR) -> float:
    """Root-mean-square SW of ``reps`` independent exact samples of size ``n`` to ``ref``.

    The SW of one sample is very noisy for multimodal posteriors (its mode weights
    fluctuate), so the floor is an average over many draws, taken in the squared sense
    (``SW^2`` is what sample noise adds to).
    """
    return float(torch.tensor(exact_sws(post, ref, n, seed, reps)).pow(2).mean().sqrt())


def exact_sws(post, ref, n: int, seed: int, reps: int) -> list[float]:
    """SW to ``ref`` of ``reps`` independent exact samples of size ``n``."""
    g = torch.Generator().manual_seed(10_000 + seed)
    return [sw(post.sample(n, g), ref, seed=seed) for _ in range(reps)]


def rms(values) -> float:
    return float(torch.tensor(list(values), dtype=torch.float64).pow(2).mean().sqrt())


def exact_band(sws: list[float], floor: float, runs: int, q: float = 0.9) -> float:
    """Quantile ``q`` of (RMS over ``runs`` exact samples) / floor, from disjoint groups of
    ``sws`` (what an exact sampler scores on this metric: the noise of the metric itself)."""
    groups = [rms(sws[i:i + runs]) / floor for i in range(0, len(sws) - runs + 1, runs)]
    return float(torch.tensor(groups).quantile(q))


def run_solver(name, problem, prior, n, steps, seed, **options):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = diffinv.sample(problem, prior, solver=name, n_samples=n, steps=steps, seed=seed,
                           dtype=torch.float64, **options)
    return p, time.perf_counter() - start


def split_runs(p, runs: int):
    """Split a Posterior of ``runs * n`` samples into ``runs`` (samples, weights) groups."""
    n = p.samples.shape[0] // runs
    w = p.weights
    out = []
    for k in range(runs):
        wk = None if w is None else w[k * n:(k + 1) * n]
        out.append((p.samples[k * n:(k + 1) * n], wk))
    return out


def exactness_table(shape, dys, seeds, n, steps, solvers, rows, runs=RUNS):
    """SW/floor per solver: RMS over ``runs`` independent runs of ``n`` samples each (SMC:
    ``n_runs`` batched runs of ``n`` particles; other solvers: ``runs * n`` independent
    chains split in groups of ``n``) divided by the RMS of exact samples of size ``n``."""
    for dy in dys:
        for seed in seeds:
            prior, problem, post, ref = mixture_case(shape, dy, seed)
            sws = exact_sws(post, ref, n, seed, max(N_FLOOR, 8 * runs))
            floor = rms(sws[:N_FLOOR])
            band = exact_band(sws, floor, runs)
            single = exact_band(sws, floor, 1)
            for name in solvers:
                solver, options = VARIANTS.get(name, (name, {}))
                if solver == "smc":
                    options = {**options, "n_runs": runs}
                try:
                    p, wall = run_solver(solver, problem, prior, runs * n, steps, seed,
                                         **options)
                    vals = [sw(x, ref, w, seed=seed) / floor for x, w in split_runs(p, runs)]
                    rows.append((shape, dy, seed, name, rms(vals), max(vals), band, single,
                                 p.diagnostics["nfe"], wall / runs, p.ess / runs))
                except Exception as exc:  # report and continue with the next solver
                    rows.append((shape, dy, seed, name, float("nan"), float("nan"), band,
                                 single, 0, 0.0, 0.0))
                    print(f"  {name} failed on dx={shape} dy={dy} seed={seed}: {exc}")
            print_rows(rows[-len(solvers):])


def print_rows(rows):
    for shape, dy, seed, name, ratio, worst, band, single, nfe, wall, ess in rows:
        print(f"  x{str(shape):9s} dy={dy:<3d} seed={seed:<3d} {name:18s} SW/floor={ratio:6.2f} "
              f"(exact q90 {band:4.2f}; worst run {worst:5.2f}, exact one-run q90 {single:4.2f}) "
              f"NFE={nfe:<4d} wall/run={wall:6.2f}s ESS/run={ess:7.1f}")


def summary(rows):
    print("\nSummary over seeds (median = lower middle for even counts): SW/floor (RMS over "
          "runs) median and worst, and the worst seed's exact-sampler q90 on the same metric:")
    keys = sorted({(str(r[0]), r[1], r[3]) for r in rows})
    for shape, dy, name in keys:
        sel = [r for r in rows if (str(r[0]), r[1], r[3]) == (shape, dy, name)]
        vals = torch.tensor([r[4] for r in sel])
        bands = max(r[6] for r in sel)
        walls = [r[9] for r in sel]
        print(f"  x{shape:9s} dy={dy:<3d} {name:18s} median={float(vals.nanmedian()):6.2f} "
              f"worst={float(vals.max()):6.2f} (exact q90 up to {bands:4.2f})  "
              f"wall/run={sum(walls) / len(walls):6.2f}s")


def particle_curve(ns, steps, seed, runs=RUNS):
    print(f"\nSMC error against particle count (dx=8, dy=2): SW to the exact posterior (RMS "
          f"over {runs} runs) and the exact-sample floor")
    g = torch.Generator().manual_seed(seed)
    prior = grid_mixture((8,), g)
    problem = random_problem(prior, 2, g)
    post = prior.posterior(problem)
    ref = post.sample(N_REF, g)
    for n in ns:
        p, wall = run_solver("smc", problem, prior, runs * n, steps, seed, n_runs=runs)
        err = rms(sw(x, ref, w, seed=seed) for x, w in split_runs(p, runs))
        floor = noise_floor(post, ref, n, seed)
        print(f"  N={n:<6d} SW={err:.4f}  exact-sample floor={floor:.4f}  ratio={err / floor:5.2f}"
              f"  ESS/run={p.ess / runs:8.1f}  wall/run={wall / runs:.2f}s")


def gaussian_coverage(n, steps, seed, dim=8, dy=4):
    """Mean fraction of exact posterior draws inside SMC's 90% pixelwise intervals."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, dim, dtype=torch.float64, generator=g)
    prior = GaussianPrior(torch.randn(dim, dtype=torch.float64, generator=g),
                          q @ q.T / dim + 0.2 * torch.eye(dim, dtype=torch.float64))
    problem = random_problem(prior, dy, g)
    post = prior.posterior(problem)
    draws = post.sample(N_REF, g)
    p, _ = run_solver("smc", problem, prior, n, steps, seed)
    lo, hi = p.interval(0.9)
    inside = ((draws >= lo) & (draws <= hi)).to(torch.float64).mean()
    exact = Posterior(post.sample(n, g))
    lo, hi = exact.interval(0.9)
    inside_exact = ((draws >= lo) & (draws <= hi)).to(torch.float64).mean()
    print(f"\n90% interval coverage on a Gaussian (dx={dim}, dy={dy}, N={n}, {steps} steps): "
          f"SMC {float(inside):.3f}; an exact sample of the same size {float(inside_exact):.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and particles")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--particles", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--solvers", default=None,
                    help=f"comma-separated solvers or variants {sorted(VARIANTS)}")
    ap.add_argument("--runs", type=int, default=RUNS,
                    help="independent runs per solver and problem (RMS of their SW)")
    ap.add_argument("--dx8-only", action="store_true",
                    help="only the dx=8 table (no dx=64, image, curve, coverage, deepinv)")
    ap.add_argument("--no-deepinv", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    n = args.particles or (500 if args.quick else 2000)
    n_seeds = args.seeds or (2 if args.quick else 5)
    solvers = (args.solvers.split(",") if args.solvers
               else available_solvers() + [v for v in VARIANTS if VARIANTS[v][0] in
                                           available_solvers()])
    print(f"solvers={solvers} steps={args.steps} N={n} per run, runs={args.runs} "
          f"seeds={n_seeds} (float64, 1 thread)")
    rows: list = []
    print("\nMCGdiff Gaussian mixture, dx=8:")
    exactness_table((8,), (1, 2, 4), range(n_seeds), n, args.steps, solvers, rows, args.runs)
    if args.dx8_only:
        summary(rows)
        print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
        return
    print("\ndx=64:")
    exactness_table((64,), (4,), range(1 if args.quick else 2), n, args.steps, solvers, rows,
                    args.runs)
    print("\nimage-shaped 1x16x16 (dy=16):")
    exactness_table((1, 16, 16), (16,), range(1), n, args.steps, solvers, rows, args.runs)
    summary(rows)
    particle_curve([64, 256, 1024] if args.quick else [64, 256, 1024, 4096], args.steps, 0,
                   args.runs)
    gaussian_coverage(n, args.steps, 0)
    if not args.no_deepinv:
        from deepinv_baselines import run_deepinv  # noqa: PLC0415 (optional dependency)

        run_deepinv(grid_mixture, random_problem, sw, noise_floor, n, args.steps, N_REF,
                    seeds=tuple(range(n_seeds)))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
