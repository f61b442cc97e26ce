"""DAPS, PiGDM, DiffPIR, DDRM (and DPS) against exact Gaussian posteriors.

Prints, for each solver at the same number of noise levels, the error of its samples divided by
the error of an equally large independent exact sample drawn in the same run (1.0 is the noise
floor), the denoiser evaluations per chain and the wall time.

1. 8-dimensional problems (random prior covariance, 4 random measurements, sigma 0.3), three
   seeds: whitened mean error ``||mean(z)||`` and covariance error ``||cov(z) - I||_F`` with
   ``z = L^-1 (x - mu)`` from the exact posterior ``N(mu, L L^T)``.
2. The 16x16 ``gaussian-field`` demo: RMS error of the pixel mean in units of the exact
   posterior std, and the mean ratio of pixel std to the exact posterior std.
3. ``max_batch``: wall time of DAPS with chunks of 32 against one batch of 256.

Run: ``PYTHONPATH=src python benchmarks/baselines_gaussian.py``.
"""

from __future__ import annotations

import math
import time

import torch

import diffinv
from diffinv.demos.registry import get_demo
from diffinv.operators import InverseProblem
from diffinv.operators.elementary import MatrixOperator
from diffinv.operators.noise import GaussianNoise
from diffinv.priors import GaussianPrior
from diffinv.testing.checks import whitened_moment_errors

SOLVERS = [
    ("daps", {"ode_steps": 1}),
    ("daps", {}),
    ("pigdm", {}),
    ("diffpir", {}),
    ("ddrm", {}),
    ("dps", {"guidance": "likelihood"}),
]


def small_problem(seed: int):
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(8, 8, generator=g, dtype=torch.float64)
    prior = GaussianPrior(torch.randn(8, generator=g, dtype=torch.float64),
                          b @ b.T / 8 + 0.1 * torch.eye(8, dtype=torch.float64))
    op = MatrixOperator(torch.randn(4, 8, generator=g, dtype=torch.float64) / math.sqrt(8))
    y = GaussianNoise(0.3).sample(op(prior.sample(1, g)), g)
    return prior, InverseProblem(op, GaussianNoise(0.3), y)


def label(name, opts):
    return name + ("(" + ",".join(f"{k}={v}" for k, v in opts.items()) + ")" if opts else "")


def part1(n=2000, steps=100):
    print(f"== 8-dim Gaussian problems, N={n}, {steps} levels: error / exact-sample error ==")
    print(f"{'solver':34s} {'seed':>4s} {'mean':>7s} {'cov':>7s} {'nfe':>5s} {'wall s':>7s}")
    for seed in range(3):
        prior, problem = small_problem(seed)
        post = prior.posterior(problem)
        ref = whitened_moment_errors(post.sample(n, torch.Generator().manual_seed(99)),
                                     post.mean, post.cov)
        for name, opts in SOLVERS:
            t = time.perf_counter()
            try:
                p = diffinv.sample(problem, prior, name, n_samples=n, steps=steps,
                                   dtype=torch.float64, **opts)
            except FloatingPointError:
                print(f"{label(name, opts):34s} {seed:4d}  diverged")
                continue
            wall = time.perf_counter() - t
            e = whitened_moment_errors(p.samples, post.mean, post.cov)
            print(f"{label(name, opts):34s} {seed:4d} {e['mean_error'] / ref['mean_error']:7.2f} "
                  f"{e['cov_error'] / ref['cov_error']:7.2f} {p.diagnostics['nfe']:5d} {wall:7.2f}")


def part2(n=200, steps=100):
    demo = get_demo("gaussian-field")(seed=0)
    problem, prior = demo.problem, demo.prior
    post = prior.posterior(problem)
    pstd = post.cov.diagonal().sqrt()

    def summary(s):
        s = s.reshape(s.shape[0], -1).double()
        rms = float(((s.mean(0) - post.mean) / pstd).pow(2).mean().sqrt())
        return rms, float((s.std(0) / pstd).mean())

    ref_rms, ref_std = summary(post.sample(n, torch.Generator().manual_seed(98)))
    print(f"\n== 16x16 gaussian-field demo, N={n}, {steps} levels, float32 ==")
    print(f"exact sample: mean RMS error {ref_rms:.3f} posterior std, std ratio {ref_std:.3f}")
    print(f"{'solver':34s} {'meanRMS/exact':>13s} {'std ratio':>9s} {'nfe':>5s} {'wall s':>7s}")
    for name, opts in SOLVERS:
        t = time.perf_counter()
        try:
            p = diffinv.sample(problem, prior, name, n_samples=n, steps=steps, **opts)
        except FloatingPointError:
            print(f"{label(name, opts):34s}  diverged")
            continue
        wall = time.perf_counter() - t
        rms, ratio = summary(p.samples)
        print(f"{label(name, opts):34s} {rms / ref_rms:13.2f} {ratio:9.3f} "
              f"{p.diagnostics['nfe']:5d} {wall:7.2f}")


def part3(n=256, steps=30):
    demo = get_demo("gaussian-field")(seed=0)
    times = {}
    for mb in (None, 32):
        t = time.perf_counter()
        diffinv.sample(demo.problem, demo.prior, "daps", n_samples=n, steps=steps, max_batch=mb)
        times[mb] = time.perf_counter() - t
    print(f"\n== max_batch: DAPS {n} chains, {steps} levels ==")
    print(f"one batch {times[None]:.2f} s; chunks of 32 {times[32]:.2f} s; "
          f"ratio {times[32] / times[None]:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    part1()
    part2()
    part3()
