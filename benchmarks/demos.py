"""Solvers on the built-in demos: time, accuracy, data fit and calibration.

For every demo (``diffinv.demos.available_demos()``; real-data demos are skipped when their
data are absent) each configured solver is run on the demo's problem and prior, and the
table reports

* ``sec``: wall time of ``diffinv.sample`` (1 thread);
* ``PSNR``: of the posterior mean against the truth, peak = truth max - min (dB);
* ``rchi2``: reduced chi^2 of the posterior mean (``problem.reduced_chi2``; ~1 is a fit at
  the noise level);
* ``cov90``: fraction of truth pixels inside the Gaussian 90 % interval
  ``mean +- 1.645 std`` of the samples (0.90 is calibrated; with few samples the
  quantile interval is too noisy to judge, hence the Gaussian one);
* where the exact posterior is known (linear-Gaussian problem with a
  :class:`~diffinv.priors.GaussianPrior`): ``dmean`` = RMS of ``(mean - mean*) / std*`` (in
  exact posterior standard deviations) and ``std/std*`` = median pixel ratio.  The exact row
  (``exact``) is listed as the reference measured in the same run.

The row ``default*`` is the demo's ``solver_defaults`` with 8 chains (the CLI's default).

Run: ``PYTHONPATH=src python benchmarks/demos.py [--quick] [--demo NAME ...]``.
"""

from __future__ import annotations

import argparse
import math
import re
import time

import torch

import diffinv
from diffinv.demos import available_demos, get_demo
from diffinv.priors import GaussianPrior

# label -> (solver, steps, n_samples, options); "quick" divides steps by 4 (min 10) and
# halves the samples.  The demo's own solver_defaults always run first (8 chains, as the
# CLI) as the row "default*".  An option value "L" is replaced by the ``lipschitz`` of the
# demo's defaults (the likelihood curvature the demo computes from its data).
CONFIGS: dict[str, list[tuple[str, str, int, int, dict]]] = {
    "gaussian-field": [
        ("dps", "dps", 200, 8, {"guidance": "paper", "zeta": 1.0}),
        ("daps-ode1", "daps", 200, 8, {"ode_steps": 1}),
        ("pigdm", "pigdm", 100, 8, {}),
        ("diffpir", "diffpir", 100, 8, {}),
        ("ddrm", "ddrm", 100, 8, {}),
        ("smc", "smc", 100, 64, {}),
    ],
    "eht-crescent": [
        ("dps", "dps", 200, 8, {"guidance": "paper", "zeta": 1e-5}),
        ("daps-ode1", "daps", 100, 8, {"ode_steps": 1, "cg_max_iter": 30}),
        ("pigdm", "pigdm", 100, 8, {}),
        ("diffpir", "diffpir", 100, 8, {}),
        ("ddrm", "ddrm", 100, 8, {}),
        ("smc", "smc", 100, 64, {}),
    ],
    "ct-sparse-view": [
        ("dps", "dps", 100, 8, {"guidance": "paper", "zeta": 1e-5}),
        ("daps-lgv", "daps", 100, 8, {"ode_steps": 1, "langevin_steps": 50, "lipschitz": "L"}),
        ("pigdm", "pigdm", 100, 8, {"lipschitz": "L"}),
        ("diffpir", "diffpir", 100, 8, {"lipschitz": "L"}),
        ("smc-tds", "smc", 100, 32, {"method": "tds"}),
    ],
    "mri-multicoil": [
        ("dps", "dps", 100, 8, {"guidance": "paper", "zeta": 0.05}),
        ("pigdm", "pigdm", 50, 8, {}),
        ("daps-ode1", "daps", 50, 8, {"ode_steps": 1}),
        ("diffpir", "diffpir", 50, 8, {}),
        ("smc-tds", "smc", 50, 16, {"method": "tds"}),
    ],
    "phase-retrieval-cdp": [
        ("dps", "dps", 200, 8, {"zeta": 0.1}),
        ("daps-hmc", "daps", 100, 8, {"ode_steps": 1, "data_step": "hmc",
                                      "langevin_steps": 5, "lipschitz": "L"}),
        ("pigdm", "pigdm", 100, 8, {"lipschitz": "L"}),
        ("diffpir", "diffpir", 100, 8, {"lipschitz": "L"}),
        ("smc-tds", "smc", 100, 32, {"method": "tds"}),
    ],
}
GENERIC = [("dps", "dps", 100, 8, {"guidance": "paper", "zeta": 1e-4})]


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR (dB) of ``x`` against ``ref`` with peak ``ref.max() - ref.min()``."""
    mse = float(((x - ref) ** 2).mean())
    peak = float(ref.max() - ref.min())
    return 10 * math.log10(peak**2 / max(mse, 1e-30))


def summarise(problem, mean, std, x_true, exact) -> dict:
    """Metrics of a posterior summary ``(mean, std)`` of shape ``(1, *image_shape)``."""
    row = {"rchi2": float(problem.reduced_chi2(mean.to(torch.float32)).reshape(-1)[0])}
    if x_true is not None:
        row["psnr"] = psnr(mean, x_true)
        row["cov90"] = float(((x_true - mean).abs() <= 1.645 * std).double().mean())
    if exact is not None:
        em, es = exact
        row["dmean"] = float((((mean - em) / es) ** 2).mean().sqrt())
        row["std_ratio"] = float((std / es).median())
    return row


def exact_posterior(demo) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Exact posterior (mean, std) ``(1, *shape)`` if linear-Gaussian with a GaussianPrior."""
    if not (isinstance(demo.prior, GaussianPrior) and demo.problem.is_linear_gaussian):
        return None
    post = demo.prior.posterior(demo.problem)
    std = torch.diagonal(post.cov).clamp(min=0).sqrt().reshape(post.event_shape)
    return post.mean.reshape(1, *post.event_shape), std[None]


def run_demo(name: str, quick: bool, seed: int) -> list[dict]:
    """All configured solvers on one demo; returns the table rows."""
    try:
        demo = get_demo(name)(seed=seed)
    except FileNotFoundError as err:
        print(f"{name}: skipped ({err})")
        return []
    x_true = demo.x_true.double() if demo.x_true is not None else None
    t0 = time.perf_counter()
    exact = exact_posterior(demo)
    rows = []
    if exact is not None:
        row = summarise(demo.problem, exact[0], exact[1], x_true, exact)
        rows.append({"method": "exact", "sec": time.perf_counter() - t0} | row)
    d = demo.solver_defaults
    lip = d.get("options", {}).get("lipschitz")
    configs = [("default*", d.get("solver", "dps"), d.get("steps", 100), 8,
                dict(d.get("options", {})))]
    configs += CONFIGS.get(name, GENERIC)
    for label, solver, steps, n, opts in configs:
        opts = {k: (lip if v == "L" else v) for k, v in opts.items()}
        if quick:
            steps, n = max(10, steps // 4), max(4, n // 2)
        t0 = time.perf_counter()
        try:
            post = diffinv.sample(demo.problem, demo.prior, solver=solver, n_samples=n,
                                  steps=steps, seed=seed, **opts)
        except Exception as err:  # noqa: BLE001 - report and continue with the next solver
            rows.append({"method": label, "error": f"{type(err).__name__}: {err}"[:70]})
            continue
        sec = time.perf_counter() - t0
        mean = post.mean[None].double()
        std = post.std[None].double()
        rows.append({"method": label, "steps": steps, "n": n, "sec": sec}
                    | summarise(demo.problem, mean, std, x_true, exact))
    return rows


def fmt(v, spec: str) -> str:
    width = int(re.match(r"\d*", spec).group() or 0)
    return "-".rjust(width) if v is None else format(v, spec)


def print_table(name: str, rows: list[dict]) -> None:
    print(f"\n== {name}")
    print(f"{'method':<12}{'steps':>6}{'n':>4}{'sec':>8}{'PSNR':>7}{'rchi2':>10}{'cov90':>7}"
          f"{'dmean':>7}{'std/std*':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:<12} error: {r['error']}")
            continue
        print(f"{r['method']:<12}{fmt(r.get('steps'), '6d')}{fmt(r.get('n'), '4d')}"
              f"{r['sec']:8.1f}{fmt(r.get('psnr'), '7.2f')}{fmt(r.get('rchi2'), '10.3g')}"
              f"{fmt(r.get('cov90'), '7.2f')}{fmt(r.get('dmean'), '7.2f')}"
              f"{fmt(r.get('std_ratio'), '9.2f')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4x fewer steps, half the samples")
    ap.add_argument("--demo", nargs="*", default=None, help="demos to run (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.demo or available_demos():
        rows = run_demo(name, args.quick, args.seed)
        if rows:
            print_table(name, rows)


if __name__ == "__main__":
    main()
