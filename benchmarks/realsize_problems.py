"""Built-in problems at 128x128: default learned-prior run vs the best-tuned classical baselines.

For each problem (``mri-brain-r4``, ``mri-brain-r8``, ``ct-sparse-view-128``,
``ct-limited-angle-128``) and each held-out test image (``seed`` 0, 1, ...; the demos draw
their truths with generator seeds ``HELD_OUT_SEED + seed``, never training seeds), prints
SSIM and PSNR against the truth (:mod:`diffinv.operators.mri.metrics`: magnitude images,
data range the truth's maximum) and the wall time of

* the posterior mean of the demo's default run (its solver, steps and options,
  ``--samples`` chains, seed 0),
* CG-SENSE at its best iteration count and l1-wavelet at its best lambda (MRI), FBP with its
  best window and TV at its best lambda (CT), each tuned per image against the truth
  (``realsize_baselines.py``: the oracle choice, the most favourable to the baseline).

Then the mean over images per problem and method.  ``--solver``, ``--steps`` and
``--option`` override the defaults (for tuning).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 python benchmarks/realsize_problems.py
--images 5 --threads 1``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import diffinv
from diffinv.cli import parse_option
from diffinv.demos import get_demo
from diffinv.operators.mri import psnr, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realsize_baselines as base  # noqa: E402

PROBLEMS = ("mri-brain-r4", "mri-brain-r8", "ct-sparse-view-128", "ct-limited-angle-128")


def scores(truth: torch.Tensor, img: torch.Tensor) -> tuple[float, float]:
    """(SSIM, PSNR dB) of ``img`` against ``truth``, both ``(H, W)``."""
    t, e = truth.to(torch.float64)[None], img.to(torch.float64)[None]
    return float(ssim(t, e)), float(psnr(t, e))


def calibration(truth: torch.Tensor, samples: torch.Tensor) -> tuple[float, float]:
    """Fraction of pixels whose posterior-mean error is within 2 posterior std, and the
    correlation of ``|error|`` with the std (``truth`` ``(H, W)``, ``samples`` ``(K, H, W)``)."""
    err, std = (samples.mean(0) - truth).abs(), samples.std(0)
    cover = float((err <= 2 * std).double().mean())
    return cover, float(torch.corrcoef(torch.stack([err.flatten(), std.flatten()]))[0, 1])


def run_default(demo, args) -> tuple[torch.Tensor, float, str]:
    """Posterior-mean image ``(H, W)`` of the default run, its wall time and settings
    (with the calibration of its std against the truth, :func:`calibration`)."""
    d = demo.solver_defaults
    solver = args.solver or d["solver"]
    options = dict(d.get("options", {})) if solver == d["solver"] else {}
    options.update(dict(args.option))
    steps = args.steps or d["steps"]
    t0 = time.perf_counter()
    post = diffinv.sample(demo.problem, demo.prior, solver=solver, n_samples=args.samples,
                          steps=steps, seed=0, progress=False,
                          physical_range=demo.metadata.get("physical_range"), **options)
    secs = time.perf_counter() - t0
    mean = demo.to_image(post.mean[None].to(torch.float64))[0]
    shown = {k: v for k, v in options.items() if k != "lipschitz"}
    truth = demo.to_image(demo.x_true.to(torch.float64))[0]
    cover, corr = calibration(truth, demo.to_image(post.samples.to(torch.float64)))
    return mean, secs, (f"{solver} steps={steps} {shown}; within 2 std {cover:.3f}, "
                        f"corr(|err|, std) {corr:.2f}")


def baselines(name: str, demo, truth: torch.Tensor) -> dict:
    """The two tuned baselines of the problem's modality: ``{label: (img, choice, s)}``."""
    problem = demo.problem
    if name.startswith("mri"):
        mri = problem.operator.outer
        return {"CG-SENSE": base.cg_sense_best(mri, problem.y, truth),
                "L1-wavelet": base.l1_wavelet_best(mri, problem.y, truth)}
    op, ell, sigma = problem.operator, problem.y, problem.noise.sigma
    return {"FBP": base.fbp_best(op, ell, truth), "TV": base.tv_best(op, ell, sigma, truth)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--images", type=int, default=5, help="held-out test images (seeds 0..)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=8, help="posterior samples (chains)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--prior", default=None, help="prior name or path (default: the demo's)")
    ap.add_argument("--solver", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--option", action="append", type=parse_option, default=[])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-baselines", action="store_true", help="tuning: learned prior only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()} samples={args.samples} size={args.size} "
          f"images={args.images} (seeds {args.first_seed}..{args.first_seed + args.images - 1})")
    table: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for name in args.problems:
        for seed in range(args.first_seed, args.first_seed + args.images):
            kw = {"prior": args.prior} if args.prior else {}
            demo = get_demo(name)(seed=seed, size=args.size, **kw)
            truth = demo.to_image(demo.x_true.to(torch.float64))[0]
            mean, secs, settings = run_default(demo, args)
            rows = {f"learned ({demo.metadata['prior']})": (mean, settings, secs)}
            if not args.no_baselines:
                rows.update(baselines(name, demo, truth))
            for label, (img, choice, s) in rows.items():
                q = scores(truth, img)
                table.setdefault((name, label), []).append((*q, s))
                print(f"{name} seed={seed} {label:28s} SSIM {q[0]:.3f} PSNR {q[1]:6.2f} dB "
                      f"{s:7.1f} s  [{choice}]", flush=True)
    print("\nmean over images (SSIM, PSNR dB, wall s)")
    for (name, label), vals in table.items():
        cols = [statistics.fmean(v[i] for v in vals) for i in range(3)]
        print(f"{name:22s} {label:30s} {cols[0]:.3f}  {cols[1]:6.2f}  {cols[2]:7.1f}"
              f"   (n={len(vals)})")


if __name__ == "__main__":
    main()
