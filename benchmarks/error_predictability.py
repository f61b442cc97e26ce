"""Does anything in the posterior predict the error better than its std?  (issue 15)

From a calibration store (``benchmarks/calibration_domains.py``; tasks with truths and
samples), per problem x solver setting, with the first ``--calibration`` images (sorted
seeds) as the calibration split and the rest as the test split, the pooled Pearson
correlation over the test pixels of ``|posterior mean - truth|`` with:

* ``std``: the posterior std (the benchmark's metric; any affine recalibration of it, e.g.
  one conformal scale, has the same correlation);
* ``std 3x3``: the std averaged over 3 x 3 pixel windows (its sampling noise averaged out);
* ``error model``: ``exp(X b / 2)`` with ``b`` the least-squares fit of ``log(e^2)`` on
  features ``X`` computed from the posterior alone (1, log std, log std 3x3, log gradient
  magnitude of the mean, mean, mean^2), fitted on the calibration split: a locally weighted
  difficulty model (Lei et al. 2018, "Distribution-free predictive inference for
  regression", JASA, sec. 5.2);
* ``Mondrian``: the std times one split conformal scale per quartile group of a posterior
  feature (gradient magnitude of the mean, or the mean), quartile edges and scales fitted on
  the calibration split at 90 % (group-conditional conformal prediction, Vovk et al. 2005),
  with the test coverage overall and per group.

If none of these beats the std by much, the std already carries what the posterior knows
about where the errors are, and a low correlation is a property of the posterior (how much
its std varies over the pixels), not of the calibration.

Usage: python benchmarks/error_predictability.py STORE [STORE ...] [--calibration 10]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from diffinv.study.conformal import error_std_correlation, posterior_from_result
from diffinv.study.store import Store
from diffinv.study.tasks import setting_label

FEATURES = ("log std", "log std 3x3", "log |grad mean|", "mean", "mean^2")
GRADIENT_FLOOR = 1e-3  # added to the gradient magnitude before the log (image units / pixel)


def pixel_features(mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel features of one posterior, from its mean and std ``(H, W)`` only.

    Returns flattened ``std``, ``std3`` (3 x 3 window average), ``grad`` (Sobel gradient
    magnitude of the mean, per pixel) and ``mean``.
    """
    grad = np.hypot(ndimage.sobel(mean, 0), ndimage.sobel(mean, 1))
    return {"std": std.ravel(), "std3": ndimage.uniform_filter(std, 3).ravel(),
            "grad": grad.ravel(), "mean": mean.ravel()}


def design(f: dict[str, np.ndarray]) -> np.ndarray:
    """The error model's design matrix ``(pixels, 1 + len(FEATURES))``."""
    tiny = np.finfo(np.float64).tiny
    return np.stack([np.ones_like(f["std"]), np.log(f["std"] + tiny), np.log(f["std3"] + tiny),
                     np.log(f["grad"] + GRADIENT_FLOOR), f["mean"], f["mean"] ** 2], 1)


def fit_error_model(features: dict[str, np.ndarray], abs_error: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of ``log(e^2)`` on :func:`design` (calibration pixels)."""
    floor = 1e-6 * float(np.mean(abs_error ** 2)) + np.finfo(np.float64).tiny
    coef, *_ = np.linalg.lstsq(design(features), np.log(abs_error ** 2 + floor), rcond=None)
    return coef


def predict_error(features: dict[str, np.ndarray], coef: np.ndarray) -> np.ndarray:
    """The error model's predicted error scale ``exp(X b / 2)`` per pixel."""
    return np.exp(0.5 * design(features) @ coef)


def mondrian(cal: dict[str, np.ndarray], cal_error: np.ndarray, test: dict[str, np.ndarray],
             key: str, level: float = 0.9, groups: int = 4):
    """Per-quartile-group conformal scales of ``|e| / std`` on ``key``; test half-widths.

    Returns
    -------
    (scales, half_width, group)
        ``scales`` ``(groups,)`` fitted on the calibration pixels (finite-sample quantile
        ``ceil((n + 1) level) / n``), the test half-widths ``std * scale[group]`` and each
        test pixel's group.
    """
    edges = np.quantile(cal[key], np.arange(1, groups) / groups)
    g_cal, g_test = np.digitize(cal[key], edges), np.digitize(test[key], edges)
    ratio = cal_error / np.maximum(cal["std"], np.finfo(np.float64).tiny)
    scales = np.empty(groups)
    for j in range(groups):
        r = np.sort(ratio[g_cal == j])
        k = min(len(r) - 1, int(np.ceil((len(r) + 1) * level)) - 1)
        scales[j] = r[k]
    return scales, test["std"] * scales[g_test], g_test


def split_figures(cal: list[tuple], test: list[tuple]) -> dict[str, object]:
    """The figures of one setting: ``cal`` and ``test`` are lists of ``(features, |e|)``."""
    cat = lambda items, k: np.concatenate([f[k] for f, _ in items])  # noqa: E731
    e_cal = np.concatenate([e for _, e in cal])
    e_test = np.concatenate([e for _, e in test])
    f_cal = {k: cat(cal, k) for k in cal[0][0]}
    f_test = {k: cat(test, k) for k in test[0][0]}
    out: dict[str, object] = {
        "std": error_std_correlation(e_test, f_test["std"]),
        "std 3x3": error_std_correlation(e_test, f_test["std3"]),
        "error model": error_std_correlation(
            e_test, predict_error(f_test, fit_error_model(f_cal, e_cal))),
    }
    for key in ("grad", "mean"):
        scales, half, group = mondrian(f_cal, e_cal, f_test, key)
        inside = e_test <= half
        out[f"Mondrian by {key}"] = {
            "corr": error_std_correlation(e_test, half),
            "scales": [round(float(s), 2) for s in scales],
            "coverage": float(inside.mean()),
            "coverage_per_group": [round(float(inside[group == j].mean()), 3)
                                   for j in range(len(scales))],
        }
    return out


def load_settings(stores: Sequence[str], skipped: set | None = None
                  ) -> dict[tuple[str, str], list[tuple[int, tuple]]]:
    """Per ``(problem, setting)``: sorted ``(image, (features, |e|))`` of every task.

    Settings whose images are not one real channel (e.g. complex MRI as two channels) are
    left out and their keys added to ``skipped``.
    """
    found: dict[tuple[str, str], list] = defaultdict(list)
    for root in stores:
        for r in Store.open(root).results(arrays=True):
            if "truth" not in r.arrays:
                continue
            post = posterior_from_result(r)
            mean = post.mean.numpy().astype(np.float64)
            key = (r.settings["problem"], setting_label(r.settings))
            if mean.ndim != 3 or mean.shape[0] != 1:
                if skipped is not None:
                    skipped.add(key)
                continue  # one real channel (H, W) only
            std = post.std.numpy().astype(np.float64)[0]
            truth = np.asarray(r.arrays["truth"], dtype=np.float64).reshape(mean.shape)[0]
            found[key].append((int(r.settings["image"]),
                               (pixel_features(mean[0], std), np.abs(mean[0] - truth).ravel())))
    return {k: sorted(v, key=lambda t: t[0]) for k, v in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--calibration", type=int, default=None,
                        help="calibration images (the first by seed; default: half)")
    args = parser.parse_args(argv)
    skipped: set = set()
    settings = load_settings(args.stores, skipped)
    for problem, setting in sorted(skipped):
        print(f"{problem} | {setting}: left out (images are not one real channel)")
    if not settings:
        parser.error("stores: no task with a truth and one real channel found")
    for (problem, setting), items in sorted(settings.items()):
        n_cal = len(items) // 2 if args.calibration is None else args.calibration
        if not 1 <= n_cal < len(items):
            print(f"{problem} {setting}: {len(items)} images, too few for {n_cal} calibration")
            continue
        figures = split_figures([t[1] for t in items[:n_cal]], [t[1] for t in items[n_cal:]])
        print(f"{problem} | {setting} | {n_cal} calibration / {len(items) - n_cal} test images")
        for name, value in figures.items():
            if isinstance(value, dict):
                print(f"  {name}: corr {value['corr']:.3f}, scales {value['scales']}, 90 % "
                      f"coverage {value['coverage']:.3f} (per group "
                      f"{value['coverage_per_group']})")
            else:
                print(f"  corr with {name}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
