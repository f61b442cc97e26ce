"""Phase retrieval: classical baselines versus diffusion-prior posterior samplers.

Held-out set: ``--n-images`` ``--size`` x ``--size`` (16 or 32) grey-level patches (values
in [0, 1]) cut from the scikit-image *test* images (cell, chelsea, coffee, text), which the
prior never saw (it is fitted / trained on patches of the training images), keeping patches
with pixel std >= 0.1.  ``--split train`` draws training-split patches instead: use it for
tuning only, never for the reported comparison.

Problems (Poisson photon noise, ``--photons`` expected photons per diffraction pattern):

* ``fourier``: 2x oversampled Fourier intensities (2 size x 2 size detector), support (the
  object window) known.  Ambiguities removed by the metrics: global sign, translation, twin
  image.
* ``cdp``: 4 coded diffraction patterns (random phase masks).  Ambiguity: global sign.

Methods:

* ER, HIO (+50 ER), RAAR with the known support (object window) and non-negativity,
  ``--restarts`` random starts each, keeping the start with the lowest Fourier error (a
  data-only choice); Wirtinger flow (real) for ``cdp``;
* diffusion-prior posterior samplers (those registered): DAPS with Langevin data steps
  (``DAPS-LGV``) and with Metropolis-adjusted HMC data steps (``DAPS-HMC``), both with
  Tweedie x0 estimates and the step size from the likelihood curvature at the prior mean
  times ``LIP_SCALE`` (a data-only choice, :func:`curvature`); SMC with twisted proposals
  (``SMC-TDS``); DPS.  Prior (``--prior``): ``auto`` takes the learned 32x32
  ``diffinv.priors.load("natural-patches")`` when ``--size 32`` (HOOK in
  :func:`diffinv.demos.phase.patch_prior`), else the Gaussian fitted to training patches;
  ``learned`` / ``gaussian`` force one.
  The samplers use the variance-stabilised amplitude likelihood
  (``AmplitudeGaussianNoise.from_flux``) of the Poisson data; of ``--samples`` chains the
  one with the lowest reduced chi^2 is reported (again a data-only choice).

Output: a table per problem with PSNR and SSIM (mean +- std over images, data range 1,
maximised over the ambiguities) and seconds per image, plus each method's PSNR difference
and time ratio against the classical reference (HIO for ``fourier``, WF for ``cdp``)
measured in the same run.

Run: ``PYTHONPATH=src python benchmarks/phase_retrieval.py [--n-images 8 --photons 1e4]``;
learned prior: ``... --size 32 --prior learned --samplers DAPS-LGV DAPS-HMC``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import diffinv
from diffinv.datasets.patches import natural_patches
from diffinv.demos.phase import patch_prior
from diffinv.operators import InverseProblem
from diffinv.operators.phase_retrieval import (
    AmplitudeGaussianNoise,
    CodedDiffraction,
    FourierPhaseRetrieval,
    PhotonNoise,
    error_reduction,
    flux_for_photons,
    hio,
    psnr,
    raar,
    ssim,
    wirtinger_flow,
)
from diffinv.solvers import available_solvers, solver_options

# label -> (solver, steps, options); "L" is replaced by the likelihood curvature estimated
# per image at a data-independent point (see :func:`curvature`).  Steps are per-method
# (``--steps`` scales them: the value here is for ``--steps 100``).
SAMPLERS = {
    "DAPS-LGV": ("daps", 100, {"ode_steps": 1, "langevin_steps": 20, "lipschitz": "L"}),
    "DAPS-HMC": ("daps", 100, {"ode_steps": 1, "data_step": "hmc", "langevin_steps": 5,
                               "lipschitz": "L"}),
    "SMC-TDS": ("smc", 100, {"method": "tds"}),
    "DPS": ("dps", 200, {"zeta": 0.3}),
}


# The curvature at the prior mean overestimates the Fourier problem's (the smooth mean puts
# all its energy in the DC term).  Factors per prior kind:
# * "gaussian" (16x16 fitted Gaussian), tuned on the held-out set at 1e4 photons (Fourier,
#   DAPS-HMC: 20.8 dB at 0.2, 22.3 at 0.05, 22.7 at 0.02 with 200 steps; CDP: 2.0, HMC loses
#   2.7 dB at 0.2);
# * "learned" (32x32 natural-patches prior), tuned on 4 TRAINING-split patches only at 1e4
#   photons, 100 steps, ode_steps 1, 4 chains (Fourier, DAPS-LGV / DAPS-HMC PSNR: 0.02:
#   17.9 / 17.2; 0.1: 17.8 / 18.8; 0.5: 20.0 / 18.0; 2.0: 17.9 / 18.6, HIO 16.5;
#   CDP: 0.5: 26.1 / 23.8; 2.0: 26.3 / 26.1; 8.0: 26.2 / 25.4, WF 21.9).  At Fourier 0.5:
#   8 chains 20.4 / 19.9; ode_steps 3: 19.9 / 19.2 (slower); 50 Langevin / HMC steps:
#   20.1 / 20.6 (HMC 4x slower), so ode_steps 1 and 20 / 5 data steps stay.
LIP_SCALE = {
    "gaussian": {"fourier": 0.02, "cdp": 2.0},
    "learned": {"fourier": 0.5, "cdp": 2.0},
}


def _lip_scale(args, problem: str, kind: str) -> float:
    return LIP_SCALE[kind][problem] if args.lipschitz_scale is None else args.lipschitz_scale


def curvature(problem: InverseProblem, x: torch.Tensor, iters: int = 20) -> float:
    """Largest Hessian eigenvalue of ``-log p(y | x)`` at ``x`` (power iteration, central
    finite differences of the autograd gradient), in 1 / image units^2."""
    def grad(z: torch.Tensor) -> torch.Tensor:
        return problem.grad_log_likelihood(z.float())[1].double()

    x = x.double()
    v = torch.ones_like(x) / math.sqrt(x.numel())
    lam, eps = 0.0, 1e-3
    for _ in range(iters):
        hv = -(grad(x + eps * v) - grad(x - eps * v)) / (2 * eps)
        lam = float(hv.norm())
        v = hv / max(lam, 1e-30)
    return lam


def classical_methods(problem: str, restarts: int):
    """name -> function(op, y, generator) returning a (batch, 1, H, W) estimate per start."""

    def best(res):
        k = int(torch.argmin(res.final_error))
        return res.x[k:k + 1]

    if problem == "fourier":
        def run_hio(op, y, g):
            yy = y.expand(restarts, -1, -1, -1)
            res = hio(op, yy, 500, generator=g)
            return best(error_reduction(op, yy, 50, x0=res.z))

        return {
            "ER": lambda op, y, g: best(error_reduction(op, y.expand(restarts, -1, -1, -1), 550,
                                                        generator=g)),
            "HIO": run_hio,
            "RAAR": lambda op, y, g: best(raar(op, y.expand(restarts, -1, -1, -1), 550,
                                               generator=g)),
        }
    return {"WF": lambda op, y, g: wirtinger_flow(op, y, 500, real=True, generator=g).x}


def run(args) -> None:
    torch.set_num_threads(args.threads)
    n = args.size
    prior, prior_desc = patch_prior(args.prior, n)
    kind = "learned" if prior_desc.startswith("learned") else "gaussian"
    # held-out patches (split "test"); "train" only for tuning, with a different seed
    seed = 2024 if args.split == "test" else 7
    images = natural_patches(args.n_images, n, torch.Generator().manual_seed(seed),
                             split=args.split, min_std=0.1, dtype=torch.float64)
    samplers = {k: v for k, v in SAMPLERS.items()
                if v[0] in available_solvers() and (args.samplers is None or k in args.samplers)}
    solvers = list(samplers)
    # data-independent point for the curvature: the prior's denoised mid-grey (~ its mean)
    with torch.no_grad():
        x_ref = prior(torch.full((1, 1, n, n), 0.5), torch.tensor([1e3])).detach()
    print(f"# phase retrieval benchmark: {args.n_images} {args.split}-split {n}x{n} patches, "
          f"{args.photons:g} photons per pattern, prior: {prior_desc}")
    print(f"# samplers: {solvers}; {args.samples} chains each (steps: "
          f"{ {k: _steps(v[1], args.steps) for k, v in samplers.items()} }), lowest reduced "
          f"chi^2 chain reported; {args.restarts} restarts for ER/HIO/RAAR; Langevin/HMC step "
          f"from { {p: _lip_scale(args, p, kind) for p in args.problems} } x the likelihood "
          "curvature at the prior mean")
    for name in args.problems:
        op = FourierPhaseRetrieval(n) if name == "fourier" else CodedDiffraction(n, 4, seed=7)
        amb = {} if name == "fourier" else {"translation": False, "twin": False}
        methods = classical_methods(name, args.restarts)
        scores: dict[str, list[tuple[float, float, float]]] = {}
        for i in range(args.n_images):
            x = images[i:i + 1]
            g = torch.Generator().manual_seed(100 + i)
            clean = op(x)
            flux = flux_for_photons(clean, args.photons)
            y = PhotonNoise(flux).sample(clean, generator=g)
            for label, fn in methods.items():
                t = time.perf_counter()
                est = fn(op, y, torch.Generator().manual_seed(i))
                dt = time.perf_counter() - t
                scores.setdefault(label, []).append(_score(est, x, amb, dt))
            problem = InverseProblem(op, AmplitudeGaussianNoise.from_flux(flux), y.float())
            t = time.perf_counter()
            lip = _lip_scale(args, name, kind) * curvature(problem, x_ref)
            t_lip = time.perf_counter() - t
            for label, (solver, steps, opts) in samplers.items():
                known = solver_options(solver)
                opts = {k: (lip if v == "L" else v) for k, v in opts.items() if k in known}
                if solver == "daps":
                    if args.ode_steps is not None:
                        opts["ode_steps"] = args.ode_steps
                    if args.langevin_steps is not None:
                        opts["langevin_steps"] = args.langevin_steps
                t = time.perf_counter()
                try:
                    post = diffinv.sample(problem, prior, solver=solver,
                                          n_samples=args.samples,
                                          steps=_steps(steps, args.steps), seed=i, **opts)
                except FloatingPointError as err:
                    print(f"# {label} failed on image {i}: {err}")
                    continue
                dt = time.perf_counter() - t + (t_lip if "L" in SAMPLERS[label][2].values()
                                                 else 0.0)
                chi = torch.nan_to_num(torch.tensor(post.diagnostics["reduced_chi2"]), nan=math.inf)
                pick = post.samples[int(torch.argmin(chi))][None].to(torch.float64)
                scores.setdefault(f"{label} + prior", []).append(_score(pick, x, amb, dt))
        _table(name, op, scores, "HIO" if name == "fourier" else "WF")


def _steps(base: int, scale: int) -> int:
    return max(10, round(base * scale / 100))


def _score(est, x, amb, seconds):
    p = float(psnr(est, x, data_range=1.0, **amb))
    s = float(ssim(est, x, data_range=1.0, **amb))
    return p, s, seconds


def _table(name, op, scores, ref) -> None:
    """Print mean +- std over images; dPSNR vs ``ref`` is paired (mean +- std of the
    per-image differences) with the number of images where the method wins, when the method
    has a score for every image (no failed runs)."""
    def stats(v):
        t = torch.tensor(v, dtype=torch.float64)
        return float(t.mean()), float(t.std()) if len(v) > 1 else 0.0

    print(f"\n## {name}: {type(op).__name__}, data {tuple(op.out_shape)} per image")
    print(f"{'method':<16} {'PSNR [dB]':>14} {'SSIM':>14} {'s/image':>9} "
          f"{'dPSNR vs ' + ref + ' (paired)':>24} {'wins':>6} {'time ratio':>10}")
    ref_ps = [s[0] for s in scores[ref]]
    ref_t = stats([s[2] for s in scores[ref]])[0]
    for label, vals in scores.items():
        (pm, ps), (sm, ss), (tm, _) = (stats([v[k] for v in vals]) for k in range(3))
        if len(vals) == len(ref_ps):
            diff = [v[0] - r for v, r in zip(vals, ref_ps)]
            dm, ds = stats(diff)
            paired = f"{dm:+7.2f} +- {ds:<4.2f}"
            wins = f"{sum(d > 0 for d in diff)}/{len(diff)}"
        else:
            paired, wins = "n/a (failed runs)", "n/a"
        print(f"{label:<16} {pm:>7.2f} +- {ps:<4.2f} {sm:>7.3f} +- {ss:<5.3f} {tm:>9.2f} "
              f"{paired:>24} {wins:>6} {tm / ref_t:>10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=8)
    ap.add_argument("--size", type=int, default=16,
                    help="patch size in pixels (the learned prior is 32x32)")
    ap.add_argument("--prior", default="auto", choices=["auto", "learned", "gaussian"],
                    help="auto: learned 'natural-patches' when its size matches, else the "
                         "Gaussian fitted to training patches")
    ap.add_argument("--split", default="test", choices=["test", "train"],
                    help="test: held-out images (the comparison); train: for tuning only")
    ap.add_argument("--ode-steps", type=int, default=None,
                    help="override DAPS ode_steps")
    ap.add_argument("--langevin-steps", type=int, default=None,
                    help="override DAPS langevin_steps (Langevin and HMC)")
    ap.add_argument("--photons", type=float, default=1e4)
    ap.add_argument("--steps", type=int, default=100,
                    help="step scale in percent of each sampler's SAMPLERS steps")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lipschitz-scale", type=float, default=None,
                    help="Langevin/HMC curvature = this x the curvature at the prior mean "
                         f"(default per prior kind and problem: {LIP_SCALE})")
    ap.add_argument("--samplers", nargs="*", default=None, choices=list(SAMPLERS),
                    help="samplers to run (default: all registered)")
    ap.add_argument("--problems", nargs="+", default=["fourier", "cdp"],
                    choices=["fourier", "cdp"])
    run(ap.parse_args())


if __name__ == "__main__":
    main()
