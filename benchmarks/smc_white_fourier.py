"""MCGdiff against an exact posterior at growing image sizes: masked Fourier, white prior.

Single-coil Cartesian MRI (masked unitary Fourier, 4x, 8 % centre, sigma 0.05) of an
``N x N`` image with the white Gaussian prior ``N(mu, tau^2 I)`` (tau 0.3, mu 0.5): the exact
posterior is independent per real Fourier coordinate, so the sampler can be checked at any
size, and MCGdiff runs with the implicit Fourier basis (no ``n x n`` matrix).  For each size,
``--particles`` particles, ``--steps`` steps, seeds ``0..--seeds-1``, printed: the observed
coordinates' mean squared error of the weighted posterior mean in units of the exact
variance (``z2``; about ``1 / ESS`` for an exact sampler), the weighted sample variance over
the exact one (``var ratio``; 1 for an exact sampler), the same two for the unobserved
coordinates (prior only), the smallest ESS over the steps, the number of resamplings and the
fewest distinct ancestors at a resampling.  One torch thread.

Run: ``PYTHONPATH=src python benchmarks/smc_white_fourier.py [--sizes 32 64 128]
[--particles 64] [--steps 50] [--seeds 2] [--option kernel=ddpm ...]``
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import diffinv
from diffinv.solvers.smc.svd_likelihood import SVDLikelihood
from diffinv.testing.white_fourier import WhiteGaussian, masked_fourier_problem, white_posterior

F64 = torch.float64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--particles", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="an smc option, e.g. kernel=ddpm, noise=pseudo, ess_threshold=0.2")
    args = parser.parse_args()
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = float(value)
        except ValueError:
            options[key] = value
    torch.set_num_threads(1)
    tau, mu = 0.3, 0.5
    for n in args.sizes:
        problem = masked_fourier_problem(n, seed=1)
        lik = SVDLikelihood.from_problem(problem, (1, n, n))
        r = lik.rank
        mean_bar, var_bar = white_posterior(lik, n, tau, mu)
        for seed in range(args.seeds):
            start = time.perf_counter()
            post = diffinv.sample(problem, WhiteGaussian(n, n, tau, mu), "smc",
                                  n_samples=args.particles, steps=args.steps,
                                  method="mcgdiff", dtype=F64, seed=seed, progress=False,
                                  **options)
            wall = time.perf_counter() - start
            d = post.diagnostics
            w = post.weights.to(F64)
            xbar = lik.coords(post.samples)
            m = (w[:, None] * xbar).sum(0)
            v = (w[:, None] * (xbar - m) ** 2).sum(0)
            z2 = (m - mean_bar) ** 2 / var_bar
            ratio = v / var_bar
            uniq = d["unique_ancestors"]
            print(f"{n}x{n} ({n * n} unknowns, {r} observed) seed {seed}: observed z2 "
                  f"{float(z2[:r].mean()):.4f} var ratio {float(ratio[:r].mean()):.3f}; "
                  f"unobserved z2 {float(z2[r:].mean()):.4f} var ratio "
                  f"{float(ratio[r:].mean()):.3f}; min ESS {min(d['ess_per_step']):.1f} of "
                  f"{args.particles}, {d['n_resamples']} resamplings, fewest ancestors "
                  f"{min(uniq) if uniq else '-'}; {d['factorisation']} set-up "
                  f"{d['setup_seconds']:.2f} s, wall {wall:.0f} s", flush=True)
    print(f"threads 1; particles {args.particles}; steps {args.steps}; options {options}; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
