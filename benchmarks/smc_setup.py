"""Set-up time of MCGdiff's linear-Gaussian coordinates: structured factorisation vs dense SVD.

For a masked unitary Fourier operator (single-coil Cartesian MRI, 4x undersampling, 8 %
centre), a random pixel mask and a parallel-beam CT operator (``--ct-angles`` views of N
detector cells: no structure), each at ``N x N``, build
:class:`diffinv.solvers.smc.mcgdiff.SVDLikelihood` with ``factorisation="auto"`` (the
operator's structure, verified by probes; for CT ``"gram"``, the eigendecomposition of the
normal matrix, since ``auto`` gives CT the dense SVD) and, up to ``--dense-max``, with
``"dense"`` (the SVD), and print the set-up time, the factorisation found and, where both
ran, the largest relative differences of the noise variances ``rho2`` and of the
log-likelihood of random images between the two.  One torch thread.

Run: ``PYTHONPATH=src python benchmarks/smc_setup.py [--sizes 32 64] [--dense-max 32]
[--ct-dense-max 64]`` (the dense SVD of the 64 x 64 masked Fourier operator fails to converge
after minutes, so ``--ct-dense-max`` runs the dense comparison for the CT case alone).
"""

from __future__ import annotations

import argparse
import math
import os

import torch

from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.elementary import Diagonal
from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
from diffinv.solvers.smc.mcgdiff import SVDLikelihood


def log_lik(lik: SVDLikelihood, x: torch.Tensor) -> torch.Tensor:
    """``log p(y | x)`` of images ``x`` in the likelihood's coordinates, ``(B,)``."""
    xbar = lik.coords(x)[:, : lik.rank]
    z = (lik.ybar - xbar) ** 2 / lik.rho2
    return (-0.5 * z - 0.5 * torch.log(2 * math.pi * lik.rho2)).sum(1) + lik.log_const


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--dense-max", type=int, default=32, help="largest N for the dense SVD")
    parser.add_argument("--ct-angles", type=int, default=30)
    parser.add_argument("--ct-dense-max", type=int, default=None,
                        help="largest N for the dense SVD of the CT case (default --dense-max)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    for n in args.sizes:
        x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=gen)
        probes = torch.randn(5, 1, n, n, dtype=torch.float64, generator=gen)
        mri = MultiCoilMRI(mask=cartesian_mask((n, n), 4, 0.08, seed=0))
        mask = Diagonal((torch.rand(1, n, n, generator=gen) > 0.5).double())
        ct = ParallelBeamRadon(n, args.ct_angles, backend="sparse")
        ct_name = f"CT {args.ct_angles} views"
        for name, op in (("masked Fourier", mri), ("pixel mask", mask), (ct_name, ct)):
            problem = InverseProblem(op, GaussianNoise(0.05), op(x))
            dense_max = args.dense_max
            if name == ct_name and args.ct_dense_max is not None:
                dense_max = args.ct_dense_max
            first = "gram" if name == ct_name else "auto"
            kinds = (first, "dense") if n <= dense_max else (first,)
            liks = []
            for kind in kinds:
                lik = SVDLikelihood.from_problem(problem, (1, n, n), factorisation=kind)
                liks.append(lik)
                diff = ""
                if len(liks) == 2 and liks[0].rank == lik.rank:
                    rel = (liks[0].rho2 - lik.rho2).abs() / lik.rho2
                    ll = [log_lik(one, probes) for one in liks]
                    ll_rel = ((ll[0] - ll[1]).abs() / ll[1].abs()).max()
                    diff = (f"  vs {first}: rho2 max rel. diff {float(rel.max()):.1e}, "
                            f"log-lik rel. diff {float(ll_rel):.1e}")
                print(f"{name:15s} {n}x{n} ({n * n} unknowns) {lik.factorisation:9s} "
                      f"rank {lik.rank:5d}  set-up {lik.setup_seconds:7.2f} s{diff}", flush=True)
    print(f"threads 1; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
