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
* the reduced chi^2 of the samples against the truth's;
* ``--langevin-sigma S``: from the run's samples, ``--langevin-steps`` steps of unadjusted
  Langevin dynamics on ``log p_S(x) + log p(y | x)`` (the learned score at the fixed noise
  level ``S``, step ``0.2 / (1 / S^2 + lipschitz)``), the same figures for its last state and
  for every ``steps / 20``-th state of its second half pooled (is DAPS's std map the limit,
  or its Gaussian decoupling?  The target is the posterior under the prior blurred by
  ``N(0, S^2)``, not the prior itself).

Usage: python benchmarks/phase_calibration_probe.py --image 1000 [--solver daps|smc]
       [--samples 16] [--steps 100] [--runs 4] [--langevin-sigma 0.02 --langevin-steps 1000]
DAPS runs the problem's own settings (what ``diffinv reconstruct`` uses); ``smc`` is TDS.
"""

from __future__ import annotations

import argparse
import math
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
    parser.add_argument("--langevin-sigma", type=float, default=None,
                        help="then unadjusted Langevin on the learned score at this sigma")
    parser.add_argument("--langevin-steps", type=int, default=1000)
    parser.add_argument("--save", default=None,
                        help="write the truth and the mean/std maps (run; Langevin pooled) "
                             "to this .npz, for pooling images (never over an existing file)")
    parser.add_argument("--pool", nargs="+", default=None, metavar="NPZ",
                        help="only pool the maps of these --save files: pooled |error|-std "
                             "correlation and its ceiling, run vs Langevin")
    args = parser.parse_args(argv)
    if args.pool:
        return pool(args.pool)
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
    maps = {"truth": truth, "mean": mean, "std": std}
    if args.langevin_sigma is not None:
        pooled = langevin_refinement(demo, post.samples, args.langevin_sigma,
                                     args.langevin_steps, truth)
        maps.update(langevin_mean=pooled.mean(0), langevin_std=pooled.std(0, ddof=1))
    if args.save:
        with open(args.save, "xb") as f:  # "x": never over a previous result
            np.savez(f, **maps)
    for w in (3, 5):
        smooth = np.sqrt(ndimage.uniform_filter(std**2, w, mode="reflect"))
        print(f"  diagnostic, std averaged over {w}x{w} pixels: corr "
              f"{error_std_correlation(err, smooth):.3f}, its ceiling "
              f"{calibrated_correlation(smooth):.3f}")
    return 0


def pool(files: list[str]) -> int:
    """Print the pooled |error|-std correlation (the calibration benchmark's metric) of the
    run's and the Langevin maps over the images of ``files``."""
    runs = [np.load(f) for f in files]
    for tag, prefix in (("run", ""), ("Langevin", "langevin_")):
        if not all(f"{prefix}std" in r for r in runs):
            continue
        err = np.concatenate([np.abs(r[f"{prefix}mean"] - r["truth"]).ravel() for r in runs])
        std = np.concatenate([r[f"{prefix}std"].ravel() for r in runs])
        print(f"{tag}, {len(runs)} images pooled: {error_figures(err, std)}")
    return 0


def error_figures(err: np.ndarray, std: np.ndarray) -> str:
    """RMS error, mean std and its CV, |error|-std correlation and its ceiling, and the
    pixelwise coverage of ``mean +- 1.645 std``, from ``|mean - truth|`` and ``std``."""
    return (f"RMS error {np.sqrt((err**2).mean()):.4f}, mean std {std.mean():.4f} "
            f"(CV {std.std() / std.mean():.2f}), corr {error_std_correlation(err, std):.3f}, "
            f"ceiling {calibrated_correlation(std):.3f}, normal 90% coverage "
            f"{float((err < 1.645 * std).mean()):.3f}")


def summary(xs: np.ndarray, truth: np.ndarray) -> str:
    """:func:`error_figures` of the mean and std of samples ``xs`` ``(n, H, W)``."""
    mean, std = xs.mean(0), xs.std(0, ddof=1)
    return f"n={len(xs)} {error_figures(np.abs(mean - truth), std)}"


def langevin_refinement(demo, samples: torch.Tensor, sigma: float, n_steps: int,
                        truth: np.ndarray) -> np.ndarray:
    """Unadjusted Langevin on the learned score at ``sigma`` plus the likelihood, started at
    ``samples`` ``(n, 1, H, W)``; prints :func:`summary` of its last and pooled states and
    returns the pooled states ``(n * 10, H, W)`` float64."""
    x = samples.detach().to(torch.float32).clone()
    lipschitz = float(demo.solver_defaults["options"]["lipschitz"])
    h = 0.2 / (1.0 / sigma**2 + lipschitz)
    sig = torch.full((x.shape[0],), sigma)
    g = torch.Generator().manual_seed(1)
    kept, every = [], max(1, n_steps // 20)
    t0 = time.perf_counter()
    for k in range(n_steps):
        with torch.no_grad():
            score = (demo.prior(x, sig) - x) / sigma**2
        _, grad = demo.problem.grad_log_likelihood(x)
        x = x + h * (score + grad) + math.sqrt(2 * h) * torch.randn(x.shape, generator=g)
        if k >= n_steps // 2 and (k - n_steps // 2) % every == 0:
            kept.append(x[:, 0].double().numpy())
    chi2 = float(demo.problem.reduced_chi2(x).median())
    print(f"  Langevin at sigma {sigma}, {n_steps} steps of {h:.2e} "
          f"({time.perf_counter() - t0:.0f} s), median reduced chi^2 {chi2:.2f}:")
    print(f"    last state: {summary(x[:, 0].double().numpy(), truth)}")
    pooled = np.concatenate(kept)
    print(f"    second half pooled: {summary(pooled, truth)}")
    return pooled


if __name__ == "__main__":
    sys.exit(main())
