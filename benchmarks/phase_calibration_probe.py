"""Why does the posterior std track the error so little on phase retrieval?  (issue 15)

One held-out image of ``phase-retrieval-cdp`` (size 32, learned natural-patches prior), one
solver run, and the checks behind ``benchmarks/README.md``, "Calibration per domain":

* the |error|-std correlation of the run beside its ceiling
  (:func:`diffinv.study.conformal.calibrated_correlation`: the expected correlation of a
  perfectly calibrated posterior with the same std map);
* DAPS: the spread ``std(x0 - x0_hat)`` the data step adds at the last three levels (is the
  std a floor of annealing noise?);
* the noise of the std map itself: the correlation of the std maps of the two halves of the
  samples, and, as a *diagnostic only* (not the benchmark's metric), the correlation with a
  std averaged over ``w x w`` pixel windows (sampling noise of the std averaged out) beside
  that map's own ceiling;
* the reduced chi^2 of the samples against the truth's.

Usage: python benchmarks/phase_calibration_probe.py --image 1000 [--solver daps|smc]
       [--samples 16] [--steps 100] [--runs 4]
DAPS runs the problem's own settings (what ``diffinv reconstruct`` uses); ``smc`` is TDS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import ndimage  # noqa: E402

import diffinv  # noqa: E402
from diffinv.demos import get_demo  # noqa: E402
from diffinv.study.conformal import calibrated_correlation, error_std_correlation  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", type=int, default=1000)
    parser.add_argument("--solver", choices=("daps", "smc"), default="daps")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--steps", type=int, default=None, help="default: 100 DAPS, 50 SMC")
    parser.add_argument("--runs", type=int, default=4, help="SMC: independent runs pooled")
    parser.add_argument("--lipschitz", default=None,
                        help="DAPS: override the problem's Langevin curvature bound (a number, "
                             "or 'flux': 8 * flux * n_masks, twice the curvature bound "
                             "4 * flux * n_masks of the Poisson likelihood at the truth)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    demo = get_demo("phase-retrieval-cdp")(seed=args.image, size=32)
    steps = args.steps or (100 if args.solver == "daps" else 50)
    last: dict[int, tuple[float, float]] = {}
    if args.solver == "daps":
        options = dict(demo.solver_defaults["options"])
        if args.lipschitz == "flux":
            options["lipschitz"] = 8.0 * demo.metadata["flux"] * demo.metadata["n_masks"]
        elif args.lipschitz is not None:
            options["lipschitz"] = float(args.lipschitz)
        print(f"DAPS options: { {k: v for k, v in options.items()} }")

        def spread(info: dict) -> None:
            if info["step"] >= steps - 3:
                d = (info["x0"] - info["x0_hat"]).double()
                last[info["step"]] = (round(info["sigma"], 5), round(float(d.std()), 5))

        options["callback"] = spread
    else:
        options = {"n_runs": args.runs}
    t0 = time.perf_counter()
    post = diffinv.sample(demo.problem, demo.prior, solver=args.solver, n_samples=args.samples,
                          steps=steps, seed=0, **options)
    wall = time.perf_counter() - t0
    truth = demo.x_true[0, 0].double().numpy()
    mean, std = post.mean[0].double().numpy(), post.std[0].double().numpy()
    err = np.abs(mean - truth)
    chi2 = sorted(float(v) for v in demo.problem.reduced_chi2(post.samples.float()))
    print(f"image {args.image} {args.solver} {steps} steps, {args.samples} samples, {wall:.0f} s "
          f"(1 thread): RMS error {np.sqrt((err**2).mean()):.4f}, mean std {std.mean():.4f} "
          f"(CV {std.std() / std.mean():.2f}), 90% coverage {post.coverage(demo.x_true, 0.9):.3f}")
    print(f"  corr(|error|, std) {error_std_correlation(err, std):.3f}, ceiling if calibrated "
          f"{calibrated_correlation(std):.3f}")
    print(f"  reduced chi^2 of the samples {chi2[0]:.2f} .. {chi2[-1]:.2f} (median "
          f"{np.median(chi2):.2f}); truth {float(demo.problem.reduced_chi2(demo.x_true)):.2f}")
    if last:
        print("  DAPS data-step spread std(x0 - x0_hat) at the last levels (sigma, spread):",
              last)
    samples = post.samples[:, 0].double().numpy()
    if post.weights is None and len(samples) >= 4:
        a, b = samples[0::2], samples[1::2]
        print(f"  std maps of the two halves: correlation "
              f"{error_std_correlation(a.std(0, ddof=1), b.std(0, ddof=1)):.3f}")
    for w in (3, 5):
        smooth = np.sqrt(ndimage.uniform_filter(std**2, w, mode="reflect"))
        print(f"  diagnostic, std averaged over {w}x{w} pixels: corr "
              f"{error_std_correlation(err, smooth):.3f}, its ceiling "
              f"{calibrated_correlation(smooth):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
