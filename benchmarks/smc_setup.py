"""Set-up time of MCGdiff's linear-Gaussian coordinates: structured, economy, dense factorisations.

For a masked unitary Fourier operator (single-coil Cartesian MRI, 4x undersampling, 8 %
centre), a random pixel mask and a parallel-beam CT operator (``--ct-angles`` views of N
detector cells: no structure, fewer data rows than unknowns), each at ``N x N``, build
:class:`diffinv.solvers.smc.svd_likelihood.SVDLikelihood` with ``factorisation="auto"`` (the
operator's structure, verified by probes; for CT the economy ``"row-gram"``, which keeps only
the observed directions ``V_r``), for CT also ``"economy"`` (the SVD without the complement)
up to ``--economy-max`` and ``"gram"`` up to ``--gram-max``, and, up to ``--dense-max``
(``--ct-dense-max`` for CT), ``"dense"`` (the full SVD, the only path for CT before the
economy one).  Printed per factorisation: set-up time, rank, the memory of ``V`` (``n x n``
or ``n x r``), the estimated set-up peak (``setup_bytes``), the process's peak resident
memory so far (the factorisations run cheapest first, so the first rows' peaks are their
own), the time of one step's change of coordinates for 64 particles (``V^T x`` and ``V xbar``:
a matrix product with a dense ``V``, indexing or one FFT each with a structured one, minimum
of 3), and where the dense SVD also ran, the largest relative differences of the noise
variances ``rho2`` and of the log-likelihood of random images against it.  One torch thread.

Run: ``PYTHONPATH=src python benchmarks/smc_setup.py [--sizes 32 64] [--dense-max 32]
[--ct-dense-max 64] [--problems mri mask ct] [--repeats 1]`` (the dense SVD of the 64 x 64
masked Fourier operator fails to converge after minutes, so ``--ct-dense-max`` runs the dense
comparison for the CT case alone; ``--repeats`` runs every factorisation that many times,
interleaved, and prints the minimum set-up time of each).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time

import torch

from diffinv.operators import GaussianNoise, InverseProblem
from diffinv.operators.ct import ParallelBeamRadon
from diffinv.operators.elementary import Diagonal
from diffinv.operators.mri import MultiCoilMRI, cartesian_mask
from diffinv.solvers.smc.factorisation import setup_bytes
from diffinv.solvers.smc.svd_likelihood import SVDLikelihood, data_rows


def log_lik(lik: SVDLikelihood, x: torch.Tensor) -> torch.Tensor:
    """``log p(y | x)`` of images ``x`` in the likelihood's coordinates, ``(B,)``."""
    xbar = lik.coords(x)[:, : lik.rank]
    z = (lik.ybar - xbar) ** 2 / lik.rho2
    return (-0.5 * z - 0.5 * torch.log(2 * math.pi * lik.rho2)).sum(1) + lik.log_const


def coords_ms(lik: SVDLikelihood, n: int, particles: int = 64) -> float:
    """Minimum of 3 timings (ms) of ``V^T x`` then ``V xbar`` for ``particles`` images."""
    x = torch.randn(particles, n * n, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        xbar = lik.coords(x)
        if lik.complete:
            lik.basis.expand(xbar)
        else:
            lik.basis.expand(xbar) + lik.basis.project_out(x)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--dense-max", type=int, default=32, help="largest N for the dense SVD")
    parser.add_argument("--ct-angles", type=int, default=30)
    parser.add_argument("--ct-dense-max", type=int, default=None,
                        help="largest N for the dense SVD of the CT case (default --dense-max)")
    parser.add_argument("--economy-max", type=int, default=64,
                        help="largest N for the economy SVD of the CT case")
    parser.add_argument("--gram-max", type=int, default=0,
                        help="largest N for the full Gram path of the CT case")
    parser.add_argument("--problems", nargs="+", default=["mri", "mask", "ct"],
                        choices=["mri", "mask", "ct"])
    parser.add_argument("--repeats", type=int, default=1,
                        help="interleaved rounds of every factorisation (min reported)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    for n in args.sizes:
        x = torch.randn(1, 1, n, n, dtype=torch.float64, generator=gen)
        probes = torch.randn(5, 1, n, n, dtype=torch.float64, generator=gen)
        ct_name = f"CT {args.ct_angles} views"
        ops = {"mri": ("masked Fourier",
                       lambda n=n: MultiCoilMRI(mask=cartesian_mask((n, n), 4, 0.08, seed=0))),
               "mask": ("pixel mask", lambda n=n: Diagonal(
                   (torch.rand(1, n, n, generator=gen) > 0.5).double())),
               "ct": (ct_name,
                      lambda n=n: ParallelBeamRadon(n, args.ct_angles, backend="sparse"))}
        for key in args.problems:
            name, make = ops[key]
            op = make()
            problem = InverseProblem(op, GaussianNoise(0.05), op(x))
            dense_max = args.dense_max
            kinds = ["auto"]
            if name == ct_name:
                if args.ct_dense_max is not None:
                    dense_max = args.ct_dense_max
                kinds += ["economy"] if n <= args.economy_max else []
                kinds += ["gram"] if n <= args.gram_max else []
            kinds += ["dense"] if n <= dense_max else []
            liks, times = {}, {kind: [] for kind in kinds}
            for rep in range(args.repeats):  # interleaved: every kind once per round
                for kind in kinds:
                    lik = SVDLikelihood.from_problem(problem, (1, n, n), factorisation=kind)
                    liks[kind] = lik
                    times[kind].append(lik.setup_seconds)
                    if rep:
                        continue
                    est = setup_bytes(data_rows(problem), n * n, lik.factorisation)
                    print(f"{name:15s} {n}x{n} ({n * n} unknowns) {lik.factorisation:9s} "
                          f"rank {lik.rank:5d}  set-up {lik.setup_seconds:7.2f} s  "
                          f"V {lik.basis.nbytes / 2**20:.2f} MiB  est. peak "
                          f"{est / 2**30:.2f} GiB  process peak {peak_rss_gib():.2f} GiB  "
                          f"coords 64 particles {coords_ms(lik, n):.1f} ms", flush=True)
            if args.repeats > 1:
                print("  min set-up over " + str(args.repeats) + " interleaved rounds: "
                      + ", ".join(f"{liks[k].factorisation} {min(t):.2f} s"
                                  for k, t in times.items()))
            if "dense" in liks:
                ref = liks["dense"]
                ll_ref = log_lik(ref, probes)
                for lik in liks.values():
                    if lik is ref or lik.rank != ref.rank:
                        continue
                    rel = (lik.rho2 - ref.rho2).abs() / ref.rho2
                    ll_rel = ((log_lik(lik, probes) - ll_ref).abs() / ll_ref.abs()).max()
                    print(f"  {lik.factorisation} vs dense: rho2 max rel. diff "
                          f"{float(rel.max()):.1e}, log-lik rel. diff {float(ll_rel):.1e}")
    print(f"threads 1; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
