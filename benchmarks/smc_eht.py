"""SMC on the real EHT 2017 M87 data with the learned ``blackhole`` prior, against DAPS.

For each UVFITS file (the shared M87 days) builds the closure-phase / log-closure-amplitude /
flux problem with :func:`diffinv.demos.eht.build_m87` and the shipped ``blackhole`` prior,
then runs

* ``smc`` (TDS) with adaptive tempering, MALA (or pCN) rejuvenation and the
  variance-inflated twist;
* ``daps`` with the demo's defaults (HMC data steps),

and prints, per run: the smallest ESS over the steps (fraction of the particles), the
distinct ancestors at each resampling (smallest), the MCMC acceptance, the ring diameter's
posterior mean and standard deviation (REx-style ring metrics; weighted for SMC), the ratio of
SMC's diameter std to DAPS's, the mean pixel std, and the weighted mean reduced chi^2 of the
data (closures + flux).  Targets (issue 15): ESS never below 10 % of the particles after
rejuvenation, diameter std within 2x of DAPS's, reduced chi^2 <= 1.5.

Usage (threads: 1; the machine is shared)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/smc_eht.py \
        [--particles 64] [--steps 50] [--moves 2] [--rejuvenation mala|pcn] \
        [--days 095_lo] [--daps-samples 16]
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from pathlib import Path

import torch

import diffinv
from diffinv.demos.eht import build_m87
from diffinv.operators.interferometry.metrics import ring_metrics
from diffinv.priors.checkpoints import load

DATA = Path(os.environ.get("DIFFINV_SHARED_DATA", "/work/shared/data")) / "eht2017_m87"
FOV_UAS = 160.0


def _weighted_stats(values: torch.Tensor, weights: torch.Tensor) -> tuple[float, float]:
    w = weights.to(torch.float64) / weights.sum()
    mean = float((w * values).sum())
    return mean, math.sqrt(float((w * (values - mean) ** 2).sum()))


def summarise(name: str, post, problem) -> dict:
    """Ring diameter, pixel std and chi^2 of a posterior (weights if it has them)."""
    x = post.samples.to(torch.float64)
    n = x.shape[0]
    w = post.weights if post.weights is not None else torch.full((n,), 1.0 / n)
    w = w.to(torch.float64)
    diam = torch.tensor([ring_metrics(im[0], fov_uas=FOV_UAS).diameter_uas for im in x],
                        dtype=torch.float64)
    d_mean, d_std = _weighted_stats(diam, w)
    mean = (w[:, None] * x.reshape(n, -1)).sum(0)
    pix_std = ((w[:, None] * (x.reshape(n, -1) - mean) ** 2).sum(0)).sqrt().mean()
    chi2 = problem.reduced_chi2(x.to(post.samples.dtype)).to(torch.float64)
    return {"name": name, "diam_mean": d_mean, "diam_std": d_std, "pix_std": float(pix_std),
            "chi2": float((w * chi2).sum()), "ess_eff": float(1.0 / (w**2).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--moves", type=int, default=2)
    ap.add_argument("--rejuvenation", default="mala", choices=["mala", "pcn"])
    ap.add_argument("--tempering", type=float, default=0.5)
    ap.add_argument("--inflation", type=float, default=1.0)
    ap.add_argument("--daps-samples", type=int, default=16)
    ap.add_argument("--daps-steps", type=int, default=50)
    ap.add_argument("--days", nargs="+", default=["095_lo"],
                    help="file tags: 095_lo 095_hi 096_lo 096_hi")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    prior = load("blackhole")
    print(f"threads=1 particles={args.particles} steps={args.steps} moves={args.moves} "
          f"rejuvenation={args.rejuvenation} "
          f"tempering={args.tempering} inflation={args.inflation}")
    for tag in args.days:
        path = DATA / f"SR1_M87_2017_{tag}_hops_netcal_StokesI.uvfits"
        if not path.is_file():
            print(f"{tag}: {path} not found, skipped")
            continue
        demo = build_m87(path=str(path), prior=prior, image_size=32, fov_uas=FOV_UAS)
        problem = demo.problem
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            smc = diffinv.sample(problem, prior, solver="smc", n_samples=args.particles,
                                 steps=args.steps, seed=args.seed, method="tds",
                                 tempering=args.tempering, rejuvenation=args.rejuvenation,
                                 rejuvenation_moves=args.moves,
                                 twist_inflation=args.inflation)
        t_smc = time.perf_counter() - t0
        d = smc.diagnostics
        t0 = time.perf_counter()
        daps_opts = dict(demo.solver_defaults["options"])
        daps = diffinv.sample(problem, prior, solver="daps", n_samples=args.daps_samples,
                              steps=args.daps_steps, seed=args.seed, **daps_opts)
        t_daps = time.perf_counter() - t0
        s, r = summarise("smc", smc, problem), summarise("daps", daps, problem)
        ess_min = min(d["ess_per_step"]) / args.particles
        acc = d.get("move_acceptance", [])
        print(f"{tag}: SMC {t_smc:.0f}s (nfe {d.get('nfe')}), DAPS {t_daps:.0f}s; "
              f"SMC warnings: {[str(c.message)[:60] for c in caught]}")
        print(f"  SMC min ESS/N over steps {ess_min:.3f}, final ESS {d['ess_final']:.1f}, "
              f"min unique ancestors {min(d['unique_ancestors'], default=args.particles)}"
              f"/{args.particles}, resamplings {d['n_resamples']}, tempering steps at the end "
              f"{d.get('tempering_steps')}, min lambda {min(d['tempering_path']):.3g}, "
              f"move acceptance mean {sum(acc) / max(len(acc), 1):.2f}, "
              f"log-evidence {d['log_evidence']:.1f}")
        for q in (s, r):
            print(f"  {q['name']:5s} diameter {q['diam_mean']:.1f} +- {q['diam_std']:.2f} uas, "
                  f"mean pixel std {q['pix_std']:.2e} Jy, reduced chi2 {q['chi2']:.2f}, "
                  f"ESS of the weights {q['ess_eff']:.1f}")
        ratio = s["diam_std"] / r["diam_std"] if r["diam_std"] > 0 else float("nan")
        print(f"  diameter std SMC/DAPS {ratio:.2f}; pixel std SMC/DAPS "
              f"{s['pix_std'] / r['pix_std']:.2f}")


if __name__ == "__main__":
    main()
