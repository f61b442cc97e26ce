"""Which default prior for the small built-in problems: analytic Gaussian vs learned.

``phase``: ``phase-retrieval-cdp`` (16x16, 4 masks, 1e4 photons) on held-out patches
(``seed`` 0, 1, ...), the fitted Gaussian against the learned ``natural-patches`` prior
applied at 16x16 (size-agnostic); PSNR (data range 1, global sign removed) of the posterior
mean and the mean PSNR of the samples.

``tooth``: ``ct-tooth`` (real APS scan; needs the shared data), each prior given on the
command line (``gaussian`` = the demo's default, or a shipped name, rescaled to the scan's
units): PSNR of the posterior mean against the full-data filtered back-projection and the
mean's reduced chi^2.

Both with the demo's default solver settings, ``--samples`` chains, sampler seed 0.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/default_priors.py phase --images 4``
and ``... tooth gaussian ct-phantom ct-anatomy`` (``DIFFINV_SHARED_DATA`` or ../shared/data).
"""

from __future__ import annotations

import argparse
import time

import torch

import diffinv
from diffinv.demos import get_demo
from diffinv.operators.phase_retrieval import psnr as phase_psnr
from diffinv.report import psnr


def _sample(demo, n: int):
    d = demo.solver_defaults
    return diffinv.sample(demo.problem, demo.prior, solver=d["solver"], n_samples=n,
                          steps=d["steps"], seed=0, progress=False,
                          physical_range=demo.metadata.get("physical_range"),
                          **d.get("options", {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("problem", choices=["phase", "tooth"])
    ap.add_argument("priors", nargs="*", help="tooth: priors to compare")
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"threads={torch.get_num_threads()} samples={args.samples}")
    if args.problem == "phase":
        for seed in range(args.images):
            for kind in ("gaussian", "natural-patches"):
                demo = get_demo("phase-retrieval-cdp")(seed=seed, prior=kind)
                t0 = time.perf_counter()
                post = _sample(demo, args.samples)
                amb = {"translation": False, "twin": False}
                pm = float(phase_psnr(post.mean[None].float(), demo.x_true, data_range=1.0,
                                      **amb))
                ps = float(phase_psnr(post.samples.float(), demo.x_true, data_range=1.0,
                                      **amb).mean())
                print(f"phase seed={seed} {kind:16s} mean {pm:.2f} dB, samples {ps:.2f} dB, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
        return
    for kind in args.priors or ["gaussian"]:
        demo = get_demo("ct-tooth")(prior=None if kind == "gaussian" else kind)
        t0 = time.perf_counter()
        post = _sample(demo, args.samples)
        chi2 = float(demo.problem.reduced_chi2(post.mean[None].float())[0])
        print(f"tooth {kind:12s} mean PSNR vs full-data FBP "
              f"{psnr(post.mean.float(), demo.x_true[0]):.2f} dB, reduced chi^2 {chi2:.2f}, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
