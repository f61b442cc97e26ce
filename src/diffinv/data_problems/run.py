"""``diffinv reconstruct --data PATH [PATH ...]``: build the problem from files, sample, report.

Everything that can fail on a bad file (detection, reading, missing fields, prior shape)
happens before ``--out`` is created, so a bad file leaves nothing behind.  Outputs:
``posterior.h5`` (samples, mean, std, diagnostics and the exact settings in its metadata),
``summary.json`` (reduced chi^2 per data product, ESS, wall time, kind-specific figures such
as the EHT ring parameters), PNG figures with physical axes and the field's own format
(FITS with WCS for EHT, NIfTI with the voxel size for MRI and CT).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..demos.prior_choice import check_prior_fits, load_named
from ..demos.registry import Demo, image_space, plane_images, samples_for
from ..io import jsonable
from ..thread_probe import settle_run_threads
from .detect import detect_kinds

__all__ = ["build_data_problem", "reconstruct_data", "real_images"]

# per kind: words one of which a prior's ``units`` must contain, and the units in words
_UNITS = {
    "eht": (("Jy",), "flux density in Jy per pixel"),
    "ct": (("attenuation",), "attenuation per detector cell"),
    "mri": (("complex",), "complex images (real, imag), magnitude ~[0, 1]"),
}


#: ``--prior`` value for the log-normal Gaussian-process field of EHT imaging, sampled
#: exactly on its white noise (:mod:`diffinv.demos.eht_lognormal`)
LOGNORMAL = "lognormal"


def _unused_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("the image problem's denoiser is not used with --prior lognormal")


def _load_prior(name: str | None):
    if name is None:
        return None
    return load_named(name, "--prior")


def build_data_problem(paths: list[str], kind: str | None = None, prior: str | None = None):
    """Detect the kind and build the :class:`Demo` for the files (nothing is written).

    ``prior``: a shipped prior's name or checkpoint path, or ``"lognormal"`` (EHT only: the
    problem on the white noise of a log-normal field, with ``demo.latent`` set; see
    :func:`~diffinv.demos.registry.image_space`).

    Returns
    -------
    (str, Demo)
        The kind and the problem with its prior, solver defaults and metadata.
    """
    kind = detect_kinds(paths, kind)
    if kind != "eht":
        from .nifti import require_nibabel

        require_nibabel()
    if prior == LOGNORMAL:
        if kind != "eht":
            raise ValueError(f"--prior {LOGNORMAL}: the log-normal field prior is for EHT "
                             f"(UVFITS) data, got {kind} data")
        from ..demos.eht_lognormal import lognormal_demo
        from .eht import load_eht

        # the image problem of the files; its denoiser is not used (the prior is on z)
        images = load_eht([Path(p) for p in paths], prior=_unused_denoiser)
        return kind, lognormal_demo(images)
    prior_obj = _load_prior(prior)
    if kind == "eht":
        from .eht import load_eht

        demo = load_eht([Path(p) for p in paths], prior=prior_obj)
    elif kind == "ct":
        from .ct import load_ct

        demo = load_ct(Path(paths[0]), prior=prior_obj)
    else:
        from .mri import load_mri

        demo = load_mri(Path(paths[0]), prior=prior_obj)
    # the same check as a built-in problem's --prior: channels, size limits and units of the
    # prior as loaded (the data kinds wrap it to the file's scale, which hides its units)
    words, text = _UNITS[kind]
    check_prior_fits(demo.prior if prior_obj is None else prior_obj, prior or "default",
                     f"--data ({kind})", tuple(demo.problem.image_shape), words, text)
    return kind, demo


def real_images(posterior, demo: Demo) -> dict[str, torch.Tensor]:
    """Real ``mean`` ``(H, W)``, ``std`` ``(H, W)`` and ``samples`` ``(K, H, W)`` for display."""
    to_image = demo.to_image or plane_images
    mean = to_image(posterior.mean[None].to(torch.float64))[0]
    samples = to_image(posterior.samples.to(torch.float64))
    std = samples.std(0) if samples.shape[0] > 1 else torch.zeros_like(mean)
    return {"mean": mean, "std": std, "samples": samples}


def _summary(kind: str, demo: Demo, posterior, wall: float) -> dict[str, Any]:
    d = posterior.diagnostics
    summary: dict[str, Any] = {
        "kind": kind,
        "description": demo.description,
        "data_files": demo.metadata.get("files"),
        "solver": d.get("solver"),
        "n_samples": posterior.n_samples,
        "effective_sample_size": posterior.ess,
        "sampler_wall_seconds": d.get("wall_seconds"),
        "wall_seconds": wall,
        "threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "settings": demo.metadata.get("settings"),
    }
    if kind == "eht":
        from .eht_report import eht_summary

        summary.update(eht_summary(demo, posterior))
    else:
        problem = demo.problem
        mean = posterior.mean[None].to(problem.y.real.dtype)
        chi2 = problem.noise.chi2(problem.y, problem.forward(mean))
        summary["reduced_chi2_mean_by_product"] = {
            demo.metadata.get("data_product", "data"): float(chi2[0]) / problem.noise.n_data(
                problem.y
            )
        }
        if kind == "mri":
            from .mri import mri_baselines

            summary["baselines"] = mri_baselines(demo, real_images(posterior, demo)["mean"])
    return jsonable(summary)


def _print_settings(kind: str, demo: Demo, solver: str, steps: int, options: dict,
                    samples: int) -> None:
    print(f"diffinv: {kind}: {demo.description}", file=sys.stderr)
    for key, value in (demo.metadata.get("settings") or {}).items():
        print(f"diffinv:   default {key} = {value}", file=sys.stderr)
    prior = demo.prior
    name = getattr(prior, "card", {}).get("name") or type(prior).__name__
    if demo.latent is not None:
        name = f"{demo.metadata.get('prior', name)} (sampled on its white noise)"
    print(f"diffinv:   prior = {name}; solver = {solver}, steps = {steps}, samples = {samples}, "
          f"options = {options}", file=sys.stderr)


def reconstruct_data(args, outdir, n_threads: int | None = None) -> int:
    """Run ``diffinv reconstruct --data``.

    ``args`` come from :func:`diffinv.cli.build_parser`; ``outdir`` is the checked and locked
    :class:`diffinv.outdir.OutputDir` (nothing is written there before the data have been read
    and sampled); ``n_threads`` is the thread count the CLI applied; unless it was requested
    (``--threads``, ``DIFFINV_NUM_THREADS``) one step of the run is timed to settle it
    (:func:`diffinv.thread_probe.settle_run_threads`), and the count used is recorded.
    """
    from .. import sample

    start = time.perf_counter()
    kind, demo = build_data_problem(args.data, args.problem, getattr(args, "prior", None))
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    defaults = demo.solver_defaults
    solver = args.solver or defaults.get("solver", "daps")
    n_samples = samples_for(demo, solver, args.samples)
    n_threads, how = settle_run_threads(
        getattr(args, "threads", None), demo.problem, demo.prior, n_samples, dtype
    )
    print(f"diffinv:   threads = {n_threads} ({how})", file=sys.stderr)
    steps = args.steps or defaults.get("steps", 100)
    options = dict(defaults.get("options", {})) if solver == defaults.get("solver") else {}
    options.update(dict(args.option))
    _print_settings(kind, demo, solver, steps, options, n_samples)
    # the fit warnings are printed below as "diffinv: WARNING" lines, not as Python warnings
    warnings.filterwarnings("ignore", message=r"diffinv\.sample\(", category=RuntimeWarning)
    posterior = sample(
        demo.problem, demo.prior, solver=solver, n_samples=n_samples, steps=steps,
        seed=args.seed, dtype=dtype, progress=not args.no_progress,
        physical_range=demo.metadata.get("physical_range"), **options,
    )
    posterior, demo = image_space(posterior, demo)  # a latent prior's samples -> images
    settings = {"solver": solver, "steps": steps, "samples": n_samples, "seed": args.seed,
                "options": options, "dtype": args.dtype, "prior": getattr(args, "prior", None),
                "kind": kind, "data": [str(p) for p in args.data], "threads": n_threads}
    reference = demo.metadata.pop("fbp", None)
    posterior.metadata.update({"problem": kind, **demo.metadata, "run": settings})
    summary = _summary(kind, demo, posterior, time.perf_counter() - start)
    if reference is not None:
        reference = torch.tensor(reference, dtype=torch.float64)
        mean = real_images(posterior, demo)["mean"]
        summary["fbp_relative_l2_difference_of_mean"] = float(
            (mean - reference).norm() / reference.norm()
        )
        problem = demo.problem
        ref = reference.reshape(1, *problem.image_shape).to(problem.y.dtype)
        summary["reduced_chi2_fbp"] = float(
            problem.noise.chi2(problem.y, problem.forward(ref))[0]
        ) / problem.noise.n_data(problem.y)
    summary["run"] = settings
    summary["warnings"] = list(posterior.diagnostics.get("warnings", []))
    out = outdir.path
    files = _write_outputs(out, kind, demo, posterior, summary, figures=not args.no_figures,
                           reference=reference)
    outdir.finish(files)  # with --overwrite: no stale result of an earlier run remains
    for key in ("reduced_chi2_mean_by_product", "ring_samples", "wall_seconds"):
        if key in summary:
            print(f"diffinv: {key} = {summary[key]}", file=sys.stderr)
    print(f"diffinv: wrote {', '.join(files)} to {out}", file=sys.stderr)
    for message in summary["warnings"]:
        print(f"diffinv: WARNING: {message}", file=sys.stderr)
    return 0


def _write_outputs(out: Path, kind: str, demo: Demo, posterior, summary: dict,
                   figures: bool, reference: torch.Tensor | None = None) -> list[str]:
    from ..report import write_json
    from .figures import write_posterior_figures

    posterior.save(out / "posterior.h5")
    files = ["posterior.h5", "summary.json"]
    images = real_images(posterior, demo)
    if figures:
        files += write_posterior_figures(out, images, demo.metadata)
    if kind == "eht":
        from .eht_report import write_eht_fits

        files += write_eht_fits(out, posterior, demo)
    else:
        from .nifti import write_nifti, write_nifti_images

        files += write_nifti_images(out, images, demo.metadata)
        if reference is not None:
            files.append(write_nifti(out / "fbp.nii", reference,
                                     demo.metadata["voxel_size_mm"]).name)
    summary["files"] = files  # the results written (what --overwrite replaces)
    write_json(out / "summary.json", summary)
    return files
