"""Set-up time of MCGdiff's linear-Gaussian coordinates: structured factorisation vs dense SVD.

For a masked unitary Fourier operator (single-coil Cartesian MRI, 4x undersampling, 8 %
centre) and a random pixel mask, each at ``N x N``, build
:class:`diffinv.solvers.smc.mcgdiff.SVDLikelihood` with ``factorisation="auto"`` (the
operator's structure, verified by probes) and, up to ``--dense-max``, with ``"dense"`` (the
SVD), and print the set-up time and the factorisation found.  One torch thread.

Run: ``PYTHONPATH=src python benchmarks/smc_setup.py [--sizes 32 64] [--dense-max 32]``
"""

from __future__ import annotations

import argparse
import os

import torch

from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.elementary import Diagonal
from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
from diffinv.solvers.smc.mcgdiff import SVDLikelihood


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--dense-max", type=int, default=32, help="largest N for the dense SVD")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    for n in args.sizes:
        x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=gen)
        mri = MultiCoilMRI(mask=cartesian_mask((n, n), 4, 0.08, seed=0))
        mask = Diagonal((torch.rand(1, n, n, generator=gen) > 0.5).double())
        for name, op in (("masked Fourier", mri), ("pixel mask", mask)):
            problem = InverseProblem(op, GaussianNoise(0.05), op(x))
            kinds = ("auto", "dense") if n <= args.dense_max else ("auto",)
            for kind in kinds:
                lik = SVDLikelihood.from_problem(problem, (1, n, n), factorisation=kind)
                print(f"{name:15s} {n}x{n} ({n * n} unknowns) {lik.factorisation:9s} "
                      f"rank {lik.rank:5d}  set-up {lik.setup_seconds:7.2f} s", flush=True)
    print(f"threads 1; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
