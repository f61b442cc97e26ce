"""Cost of ``smc``'s ``potential="local"`` against ``"adaptive"`` with the isotropic kernel.

``local`` (the ``smc`` default since issue 15) takes the denoiser's Jacobian diagonal in the
observed directions: one backward pass per observed direction up to 8, then one random probe
(:func:`diffinv.solvers.smc.mcgdiff.jacobian_diagonal`); ``adaptive`` needs none.  This
script times both on the same problem, interleaved, and prints the ratio (min over repeats):
a 1x16x16 image with ``--dy`` random linear measurements, ``kernel="midpoint"``, under

* the shipped UNet architecture (``diffinv.priors.networks.UNet``, default configuration,
  untrained: the cost does not depend on the weights) in :class:`~diffinv.priors.edm.EDMDenoiser`;
* the 25-component Gaussian mixture of the exactness benchmark (``exactness.grid_mixture``).

Usage (1 thread)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/smc_potential_cost.py \
        [--particles 64] [--steps 10] [--repeats 3] [--dy 1 16]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from exactness import grid_mixture, random_problem

import diffinv
from diffinv.priors.edm import EDMDenoiser
from diffinv.priors.networks.unet import UNet

SHAPE = (1, 16, 16)


def timed(problem, prior, n, steps, potential, dtype) -> float:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diffinv.sample(problem, prior, solver="smc", n_samples=n, steps=steps, seed=0,
                       dtype=dtype, kernel="midpoint", potential=potential)
    return time.perf_counter() - start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--particles", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dy", type=int, nargs="+", default=[1, 16])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    mixture = grid_mixture(SHAPE, g)
    torch.manual_seed(0)
    unet = EDMDenoiser(UNet()).eval()
    print(f"particles={args.particles} steps={args.steps} repeats={args.repeats} "
          f"(1 thread; wall per step, min over repeats)")
    for dy in args.dy:
        problem = random_problem(mixture, dy, g)
        for name, prior, dtype in (("unet", unet, torch.float32),
                                   ("mixture", mixture, torch.float64)):
            times = {"adaptive": [], "local": []}
            for _ in range(args.repeats):
                for potential in times:  # interleaved
                    times[potential].append(timed(problem, prior, args.particles, args.steps,
                                                  potential, dtype) / args.steps)
            ad, lo = min(times["adaptive"]), min(times["local"])
            print(f"  dy={dy:<3d} {name:8s} adaptive {ad * 1e3:8.1f} ms/step  local "
                  f"{lo * 1e3:8.1f} ms/step  local/adaptive {lo / ad:5.2f}")


if __name__ == "__main__":
    main()
