"""Calibration per domain (issue 15): coverage, calibration curves, |error|-std correlation
and split conformal recalibration for MRI, CT, phase retrieval and EHT.

Every domain uses its built-in problem at 32x32 with the shipped learned prior of that
domain, and truths that are *held-out draws of the prior's own training family* (so an exact
sampler is calibrated by construction, and a miss is the sampler's):

=========  ======================  ===========================================================
domain     problem                 held-out truth, data, prior
=========  ======================  ===========================================================
mri        mri-multicoil           ``random_complex_phantoms`` draw (``phantom: random``),
                                   8-coil Cartesian k-space R=4, ``mri-phantom`` prior
ct         ct-sparse-view          ``random_ellipse_phantoms`` draw, 16 views, I0=1e4 counts
                                   as post-log line integrals with Gaussian errors
                                   (``noise: post-log``), ``ct-phantom`` prior
phase      phase-retrieval-cdp     natural-image patch of the *test* source images, 4 coded
                                   diffraction patterns, Poisson, ``natural-patches`` prior
eht        eht-crescent            ``random_blackhole_images`` draw (``truth: random``),
                                   EHT 2017 complex visibilities, ``blackhole`` prior
phase-     phase-retrieval-cdp     as ``phase``, with the Gaussian prior fitted to training
gaussian                           patches (``prior: gaussian``): a prior with a density, so
                                   ``smc`` is exact tempered SMC (``method="auto"``); run
                                   only when asked (``--pairs phase-gaussian:smc``)
=========  ======================  ===========================================================

The image seeds (``--first-image`` .., default 1000 ..) are none of the seeds the shipped
priors were trained or evaluated on (training pools: generator seeds 1 and 7920, i.e.
``seed * 1_000_003 + 7919 * pool + 1`` for seed 0, 1500 steps, a pool per 1000 steps;
held-out PSNR: seed 10_000); the phase-retrieval patches come from the test source images.

Solvers: ``smc`` (MCGdiff, exact for linear-Gaussian problems as the particles grow: MRI,
CT post-log and EHT visibilities are linear-Gaussian; on phase retrieval ``smc`` is the
twisted diffusion sampler) as ``--runs`` independent runs of ``--samples / --runs`` particles
pooled (``n_runs``), with the solver's current defaults (SQMC for MCGdiff), and ``daps``
(approximate): on the three linear-Gaussian problems with the exact CG data step (Tweedie
x0, 20 CG iterations, ``--steps`` levels); on phase retrieval with the problem's own tuned
settings, i.e. what ``diffinv reconstruct`` runs there (100 levels x 20 unadjusted Langevin
data steps, ``demos/phase.py``; about 10x the cost of the other tasks).  ``--solvers smc``
leaves DAPS out.  One sampler seed.

Everything goes through the study machinery: one spec per domain and solver (cheap ones
run first; ``--interleave`` runs image by image across the domains and solvers, so a run
stopped early covers every domain alike; ``--pairs`` picks domain:solver pairs) run by
:func:`diffinv.study.run` on a real Dask ``LocalCluster`` (``--workers`` processes, one torch
thread each) into one store, then :func:`diffinv.study.conformal.calibration_summary`
computes, per domain and solver, from the store alone: the raw coverage of the 50/90/95 %
central intervals on the test images, the same after split conformal recalibration fitted
per level on the disjoint calibration images
(the first ``--calibration`` seeds, default half; with ``--folds K`` also cross-fitted:
each of K blocks of images tested with the scale fitted on the other blocks, into
``STORE/calibration-Kfold/``), the pooled |error|-std correlation beside
the value a perfectly calibrated posterior with the same std maps would have
(:func:`diffinv.study.conformal.calibrated_correlation`) and the calibration curves;
PNGs (calibration curves before/after, binned RMS error against std) and ``calibration.md``
go to ``STORE/calibration/``.  Running the command again skips finished tasks.

Usage: python benchmarks/calibration_domains.py --out calib-store [--images 20]
       [--calibration 10] [--domains ct,eht,phase,mri] [--solvers smc,daps]
       [--pairs ct:smc,phase:daps] [--steps 20]
       [--samples 8] [--runs 2] [--folds 5] [--workers 2] [--interleave] [--report-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from diffinv.extras import require  # noqa: E402
from diffinv.io import atomic_write  # noqa: E402
from diffinv.study import expand, run  # noqa: E402
from diffinv.study.conformal import (  # noqa: E402
    calibration_summary,
    summary_markdown,
    write_calibration_plots,
)

#: problem name and builder options per domain
DOMAINS = {
    "ct": ("ct-sparse-view", {"noise": "post-log"}),
    "eht": ("eht-crescent", {"prior": "learned", "truth": "random"}),
    "phase": ("phase-retrieval-cdp", {"size": 32}),
    "mri": ("mri-multicoil", {"size": 32, "prior": "learned", "phantom": "random"}),
    "phase-gaussian": ("phase-retrieval-cdp", {"size": 32, "prior": "gaussian"}),
}
#: (domain, solver) studies in the order they run: SMC and DAPS everywhere
STUDIES = (("ct", "smc"), ("ct", "daps"), ("eht", "smc"), ("eht", "daps"), ("phase", "daps"),
           ("phase", "smc"), ("mri", "smc"), ("mri", "daps"), ("phase-gaussian", "smc"))
#: domains whose DAPS runs with the problem's own tuned settings (what ``diffinv reconstruct``
#: uses): phase retrieval needs its Langevin data steps (``demos/phase.py``, 100 levels)
DAPS_PROBLEM_DEFAULTS = {"phase": 100}
TRAINING_SEEDS = (1, 7920, 10_000)  # pool and held-out-evaluation seeds of the shipped priors
LEVELS = (0.5, 0.9, 0.95)
TARGET = (0.88, 0.92)
TARGET_CORR = 0.5


def solver_entry(name: str, steps: int, samples: int, runs: int, domain: str = "ct") -> dict:
    """The spec entry of one solver (fixed, documented settings)."""
    if name == "smc":
        return {"name": "smc", "steps": steps, "samples": samples, "options": {"n_runs": runs}}
    if domain in DAPS_PROBLEM_DEFAULTS:  # the problem's tuned DAPS (ode_steps 1, Langevin)
        return {"name": "daps", "steps": DAPS_PROBLEM_DEFAULTS[domain], "samples": samples,
                "problem_defaults": True}
    # DAPS: Tweedie x0 (ode_steps 1) and the exact CG data step, 20 CG iterations per level
    return {"name": "daps", "steps": steps, "samples": samples,
            "options": {"ode_steps": 1, "cg_max_iter": 20}}


def domain_spec(domain: str, solver: str, images: list[int], steps: int, samples: int,
                runs: int) -> dict:
    """The study spec of one domain and solver."""
    problem, options = DOMAINS[domain]
    return {
        "name": f"calibration-{domain}-{solver}",
        "problems": [{"name": problem, "images": images, "options": options}],
        "seeds": [0],
        "solvers": [solver_entry(solver, steps, samples, runs, domain)],
        "metrics": ["psnr", "rmse", "coverage", "calibration", "reduced_chi2", "wall_time",
                    "ess"],
        "coverage_levels": list(LEVELS),
        "save_samples": True,  # conformal recalibration needs the samples (and SMC weights)
    }


def interleaved_specs(specs: list[dict]) -> list[dict]:
    """The same tasks as ``specs``, as one spec per image and solver entry, image-major:
    image 1000 of every domain and solver (SMC on its domains, then each DAPS setting), then
    1001, ..., so that a run stopped early has the same images in every domain and solver.
    Task ids depend only on each task's settings, so the store and the report are unchanged."""
    merged: dict[str, dict] = {}
    for spec in specs:
        key = repr(spec["solvers"])
        if key not in merged:
            merged[key] = {**spec, "name": spec["name"].rsplit("-", 1)[0] + "-interleaved-"
                           + spec["solvers"][0]["name"], "problems": []}
        merged[key]["problems"] += spec["problems"]
    out = []
    for image in sorted({i for s in specs for p in s["problems"] for i in p["images"]}):
        for spec in merged.values():
            problems = [{**p, "images": [image]} for p in spec["problems"] if image in p["images"]]
            if problems:
                out.append({**spec, "name": f"{spec['name']}-{image}", "problems": problems})
    return out


def run_studies(specs: list[dict], out: Path, workers: int) -> float:
    """Run the specs one after another on one LocalCluster; return the wall time (s)."""
    distributed = require("distributed", extra="study", purpose="diffinv study")
    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1"}) as cluster, \
            distributed.Client(cluster) as client:
        for spec in specs:
            t1 = time.perf_counter()
            result = run(spec, client, out=out, progress=False, verbose=False)
            print(f"{spec['name']}: {len(result.completed)} run, {result.skipped} skipped, "
                  f"{len(result.failed)} failed in {time.perf_counter() - t1:.0f} s", flush=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("calibration-domains"))
    parser.add_argument("--images", type=int, default=20,
                        help="held-out images per domain (first half: calibration split)")
    parser.add_argument("--calibration", type=int, default=None,
                        help="calibration images (the first ones; default: half of --images)")
    parser.add_argument("--folds", type=int, default=None,
                        help="also a cross-fitted report: K folds of the images, each tested "
                             "with the scale fitted on the others (STORE/calibration-Kfold/)")
    parser.add_argument("--first-image", type=int, default=1000)
    parser.add_argument("--domains", default="ct,eht,phase,mri")
    parser.add_argument("--solvers", default="smc,daps")
    parser.add_argument("--pairs", default=None,
                        help="domain:solver pairs to run instead of --domains x --solvers, "
                             "e.g. ct:smc,eht:smc,mri:smc,phase:daps")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="independent SMC runs pooled")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interleave", action="store_true",
                        help="run image by image across the domains (one spec per solver "
                             "setting), so that a run stopped early covers every domain")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    for d in domains:
        if d not in DOMAINS:
            parser.error(f"--domains: unknown domain {d!r}; expected some of {sorted(DOMAINS)}")
    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    if args.images < 4:
        parser.error("--images: need at least 4 (half calibrate, half test)")
    images = list(range(args.first_image, args.first_image + args.images))
    if set(images) & set(TRAINING_SEEDS):
        parser.error(f"--first-image: seeds {sorted(set(images) & set(TRAINING_SEEDS))} are "
                     f"training/evaluation seeds of the shipped priors")
    n_cal = args.images // 2 if args.calibration is None else args.calibration
    if not 1 <= n_cal < args.images:
        parser.error(f"--calibration: expected 1 .. {args.images - 1} (--images - 1), got {n_cal}")
    calibration_images = images[:n_cal]
    if args.folds is not None and not 2 <= args.folds <= args.images:
        parser.error(f"--folds: expected 2 .. {args.images} (--images), got {args.folds}")
    pairs = [(d, s) for d, s in STUDIES if d in domains and s in solvers]
    if args.pairs is not None:
        wanted = {tuple(p.strip().split(":", 1)) for p in args.pairs.split(",") if p.strip()}
        if not wanted or not wanted <= set(STUDIES):
            parser.error(f"--pairs: expected domain:solver pairs among {list(STUDIES)}, got "
                         f"{args.pairs!r}")
        pairs = [p for p in STUDIES if p in wanted]
        domains = sorted({d for d, _ in pairs})
    specs = [domain_spec(d, solver, images, args.steps, args.samples, args.runs)
             for d, solver in pairs]
    if args.interleave:
        specs = interleaved_specs(specs)
    split_text = (f"{len(domains)} domains x {args.images} held-out images "
                  f"({len(calibration_images)} calibration / "
                  f"{args.images - len(calibration_images)} test)")
    if args.report_only:  # the stored tasks' settings are the table's "setting" column
        print(f"report of {args.out}: {split_text}", flush=True)
    else:
        n_tasks = sum(len(expand(s)) for s in specs)
        print(f"{n_tasks} tasks: {split_text} x solvers; {args.steps} steps, {args.samples} "
              f"samples, SMC {args.runs} runs; {args.workers} workers x 1 thread", flush=True)
        wall = run_studies(specs, args.out, args.workers)
        print(f"study wall time {wall:.0f} s", flush=True)
    reports = [(args.out / "calibration", {"calibration_images": calibration_images})]
    if args.folds is not None:
        reports.append((args.out / f"calibration-{args.folds}fold", {"folds": args.folds}))
    for report_dir, split in reports:
        rows = calibration_summary(args.out, levels=LEVELS, **split)
        table = summary_markdown(rows, target=TARGET, target_corr=TARGET_CORR)
        report_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(report_dir / "calibration.md",
                     lambda tmp, text=table: Path(tmp).write_text(text))
        paths = write_calibration_plots(rows, report_dir)
        print(table)
        print("written:", ", ".join(str(p) for p in [report_dir / "calibration.md", *paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
