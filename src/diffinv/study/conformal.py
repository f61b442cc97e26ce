"""Coverage, |error|-std correlation and split conformal recalibration from a study store.

For every problem x solver setting of a store (tasks run with ``save_samples: true``), the
held-out images are split into a *calibration* split and a disjoint *test* split.  On the
test images :func:`calibration_summary` reports

* the raw coverage of the central credible intervals at each level (fraction of truth pixels
  inside, averaged over the test tasks) and the calibration curve (19 nominal levels), and
  beside it the raw coverage of the prediction intervals
  (:meth:`~diffinv.posterior.Posterior.interval` ``kind="prediction"``), which allow for the
  finite number of samples (with 16 exact samples the sample quantiles cover a new draw at
  most 88 % of the time, whatever the level asked);
* the coverage after split conformal recalibration (:func:`diffinv.calibrate`, Angelopoulos
  & Bates 2023, sec. 2.2) fitted *on the calibration split only*, one scale per level, and
  the calibration curve after the scale fitted at the level nearest 0.9;
* the Pearson correlation of ``|posterior mean - truth|`` with the posterior std over all
  test pixels (pooled) and its median over the test images.  One global conformal scale
  multiplies every std, so it leaves this correlation unchanged.  Beside it, the correlation a
  *perfectly calibrated* posterior with the same std maps would have in expectation
  (:func:`calibrated_correlation`): a ceiling set by how much the std varies over the pixels,
  not by the sampler.

:func:`write_calibration_plots` draws the curves before/after and the binned RMS error
against the std (a calibrated posterior's RMS error equals its std: the diagonal), and
:func:`summary_markdown` the table.  Only the core dependencies are needed to compute,
matplotlib to plot.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..calibration import calibrate
from ..posterior import Posterior
from .metrics import CALIBRATION_LEVELS
from .store import Store
from .tasks import setting_label

__all__ = [
    "CalibrationSummary",
    "calibrated_correlation",
    "calibration_summary",
    "error_std_correlation",
    "posterior_from_result",
    "summary_markdown",
    "write_calibration_plots",
]


@dataclass
class CalibrationSummary:
    """Calibration of one problem x solver setting on its test split.

    Attributes
    ----------
    problem, setting, solver : str
        Problem name, solver setting label (:func:`~diffinv.study.tasks.setting_label`),
        solver name.
    calibration_images, test_images : tuple of int
        Image (truth) seeds of the two disjoint splits (cross-fitted, ``folds > 0``: every
        image is in both, each tested with a scale fitted on the other folds).
    levels : tuple of float
        Nominal levels of the central intervals.
    raw, recalibrated, scale : dict of float to float
        Per level: mean test coverage before and after conformal recalibration, and the
        fitted conformal scale (> 1: intervals were too narrow; mean over the folds).
    correlation : float
        Pearson correlation of |mean - truth| with std over all test pixels.
    correlation_median : float
        Median over the test tasks of the same correlation within one image.
    correlation_calibrated : float
        :func:`calibrated_correlation` of the pooled test std: the expected pooled
        correlation if every error were exactly ``N(0, std^2)``.
    nominal, curve_raw, curve_recalibrated : numpy.ndarray
        ``(19,)`` float64: calibration curve on the test split before and after the scale
        fitted at the level nearest 0.9.
    std, abs_error : numpy.ndarray
        Pooled test pixels (float64, in the problem's units), for the error-vs-std plot.
    folds : int
        0: one calibration/test split; k: cross-fitted over k folds.
    raw_prediction : dict of float to float
        Per level: mean test coverage of the prediction intervals (``kind="prediction"``),
        before any recalibration.
    """

    problem: str
    setting: str
    solver: str
    calibration_images: tuple[int, ...]
    test_images: tuple[int, ...]
    levels: tuple[float, ...]
    raw: dict[float, float]
    recalibrated: dict[float, float]
    scale: dict[float, float]
    correlation: float
    correlation_median: float
    correlation_calibrated: float
    nominal: np.ndarray
    curve_raw: np.ndarray
    curve_recalibrated: np.ndarray
    std: np.ndarray = field(repr=False)
    abs_error: np.ndarray = field(repr=False)
    folds: int = 0
    raw_prediction: dict[float, float] = field(default_factory=dict)


def posterior_from_result(result: Any) -> Posterior:
    """The :class:`Posterior` of a stored task (its samples and, for SMC, weights).

    Raises ``ValueError`` naming the task when the store holds no samples (run the study with
    ``save_samples: true``).
    """
    if "samples" not in result.arrays:
        raise ValueError(f"store: task {result.task_id!r} has no samples; rerun the study with "
                         f"save_samples: true to recalibrate")
    weights = result.arrays.get("weights")
    return Posterior(torch.from_numpy(np.asarray(result.arrays["samples"])),
                     None if weights is None else torch.from_numpy(np.asarray(weights)))


def error_std_correlation(abs_error: np.ndarray, std: np.ndarray) -> float:
    """Pearson correlation of two equally long pixel arrays (NaN when either is constant)."""
    a = np.asarray(abs_error, dtype=np.float64).reshape(-1)
    b = np.asarray(std, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"abs_error, std: expected the same size, got {a.size} and {b.size}")
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def calibrated_correlation(std: np.ndarray) -> float:
    r"""Expected Pearson correlation of ``|e|`` with ``s`` over pixels when each error is
    exactly ``e_i ~ N(0, s_i^2)`` (a perfectly calibrated Gaussian posterior).

    With ``E|e_i| = c s_i``, ``c = sqrt(2 / pi)``, and ``E e_i^2 = s_i^2``, over pixels drawn
    uniformly from ``std``:

    .. math:: \rho = \frac{c\,\mathrm{sd}(s)}{\sqrt{\overline{s^2} - c^2\,\bar s^2}}

    It grows with the coefficient of variation of ``s`` (0 for a constant std, 0.51 at
    CV 0.5, 0.68 at CV 1, at most ``c = 0.80``): a calibrated posterior reaches a given
    |error|-std correlation only if its std varies that much over the image.

    Parameters
    ----------
    std : numpy.ndarray
        Posterior std per pixel, any shape, nonnegative (units of the image).

    Returns
    -------
    float
        The expected correlation; NaN when ``std`` is constant or has fewer than 2 pixels.
    """
    s = np.asarray(std, dtype=np.float64).reshape(-1)
    if s.size < 2 or s.std() == 0:
        return math.nan
    c2 = 2.0 / math.pi
    return float(math.sqrt(c2) * s.std() / math.sqrt((s**2).mean() - c2 * s.mean() ** 2))


def calibration_summary(
    store: str | os.PathLike | Store,
    calibration_images: Sequence[int] | None = None,
    levels: Sequence[float] = (0.5, 0.9, 0.95),
    folds: int | None = None,
) -> list[CalibrationSummary]:
    """Per problem x solver setting of a store: coverage before/after split conformal
    recalibration on the test split, |error|-std correlation, calibration curves.

    Parameters
    ----------
    store : path or Store
        A study store whose tasks have truths and samples.
    calibration_images : sequence of int, optional
        Image seeds of the calibration split (every other image is a test image).  Default:
        per group, the first half of its sorted image seeds.
    levels : sequence of float
        Central-interval levels in (0, 1); a conformal scale is fitted for each.
    folds : int, optional
        Cross-fitted instead of one split (cross-conformal, Vovk 2015): per group the sorted
        image seeds are cut into ``folds`` contiguous blocks, each block is a test split with
        the scale fitted on the other blocks only, and every figure is over all images (each
        tested once, never with a scale fitted on itself); ``scale`` is the mean over the
        folds.  Excludes ``calibration_images``; at least 2.

    Returns
    -------
    list of CalibrationSummary
        Sorted by problem and setting; groups with no calibration or no test task (fewer
        images than ``folds``) are left out.
    """
    st = store if isinstance(store, Store) else Store.open(store)
    levels = tuple(float(v) for v in levels)
    for v in levels:
        if not 0.0 < v < 1.0:
            raise ValueError(f"levels: expected probabilities in (0, 1), got {v!r}")
    if folds is not None:
        if calibration_images is not None:
            raise ValueError("folds, calibration_images: give one of them, not both")
        if isinstance(folds, bool) or int(folds) != folds or folds < 2:
            raise ValueError(f"folds: expected an integer >= 2, got {folds!r}")
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for r in st.results(arrays=True):
        if "truth" not in r.arrays:
            continue
        s = r.settings
        key = (s["problem"], json.dumps(s["problem_options"], sort_keys=True), setting_label(s))
        groups[key].append(r)
    out = []
    for (problem, _, setting), members in sorted(groups.items()):
        images = sorted({int(r.settings["image"]) for r in members})
        if folds is not None:
            if len(images) < folds:
                continue
            blocks = [set(int(i) for i in b) for b in np.array_split(images, int(folds))]
        else:
            blocks = [set(images) - (set(int(i) for i in calibration_images)
                                     if calibration_images is not None
                                     else set(images[: len(images) // 2]))]
        splits = [([r for r in members if int(r.settings["image"]) not in b],
                   [r for r in members if int(r.settings["image"]) in b]) for b in blocks]
        if all(cal and test for cal, test in splits):
            out.append(_summarise(problem, setting, splits, levels,
                                  0 if folds is None else int(folds)))
    return out


def _summarise(problem: str, setting: str, splits: list[tuple[list[Any], list[Any]]],
               levels: tuple[float, ...], folds: int) -> CalibrationSummary:
    """Pool the test images of every (calibration, test) split, each recalibrated with the
    scale fitted on its own calibration images."""
    nominal = np.asarray(CALIBRATION_LEVELS, dtype=np.float64)
    ref_level = min(levels, key=lambda v: abs(v - 0.9))
    raw: dict[float, list[float]] = {v: [] for v in levels}
    pred: dict[float, list[float]] = {v: [] for v in levels}
    after: dict[float, list[float]] = {v: [] for v in levels}
    scales: dict[float, list[float]] = {v: [] for v in levels}
    curve_raw, curve_after, errs, stds = [], [], [], []
    for cal, test in splits:
        cal_post = [posterior_from_result(r) for r in cal]
        cal_truth = [torch.from_numpy(np.asarray(r.arrays["truth"])) for r in cal]
        test_post = [posterior_from_result(r) for r in test]
        test_truth = [torch.from_numpy(np.asarray(r.arrays["truth"])) for r in test]
        for level in levels:
            fit = calibrate(cal_post, cal_truth, level=level)
            scales[level].append(fit.scale)
            raw[level] += [p.coverage(x, level) for p, x in zip(test_post, test_truth)]
            pred[level] += [_prediction_coverage(p, x, level)
                            for p, x in zip(test_post, test_truth)]
            after[level] += [fit.apply(p).coverage(x, level)
                             for p, x in zip(test_post, test_truth)]
            if level == ref_level:
                curve_after += [fit.apply(p).calibration_curve(x, list(nominal))[1].numpy()
                                for p, x in zip(test_post, test_truth)]
        curve_raw += [p.calibration_curve(x, list(nominal))[1].numpy()
                      for p, x in zip(test_post, test_truth)]
        errs += [np.abs(np.asarray(r.arrays["mean"], np.float64)
                        - np.asarray(r.arrays["truth"], np.float64)) for r in test]
        stds += [np.asarray(r.arrays["std"], np.float64) for r in test]
    per_image = [error_std_correlation(e, s) for e, s in zip(errs, stds)]
    abs_error = np.concatenate([e.reshape(-1) for e in errs])
    std = np.concatenate([s.reshape(-1) for s in stds])
    cal_images = sorted({int(r.settings["image"]) for cal, _ in splits for r in cal})
    test_images = sorted({int(r.settings["image"]) for _, test in splits for r in test})
    return CalibrationSummary(
        problem=problem, setting=setting, solver=str(splits[0][1][0].settings["solver"]),
        calibration_images=tuple(cal_images), test_images=tuple(test_images),
        levels=levels, raw={v: float(np.mean(raw[v])) for v in levels},
        recalibrated={v: float(np.mean(after[v])) for v in levels},
        scale={v: float(np.mean(scales[v])) for v in levels},
        correlation=error_std_correlation(abs_error, std),
        correlation_median=float(np.nanmedian(per_image)) if per_image else math.nan,
        correlation_calibrated=calibrated_correlation(std),
        nominal=nominal, curve_raw=np.mean(curve_raw, axis=0),
        curve_recalibrated=np.mean(curve_after, axis=0),
        std=std, abs_error=abs_error, folds=folds,
        raw_prediction={v: float(np.nanmean(pred[v])) if np.isfinite(pred[v]).any()
                        else math.nan for v in levels},
    )


def _prediction_coverage(posterior: Posterior, truth: torch.Tensor, level: float) -> float:
    """Coverage of the prediction interval, NaN where the posterior has none (an effective
    sample size of 1: :meth:`~diffinv.posterior.Posterior.interval` says so)."""
    try:
        return posterior.coverage(truth, level, kind="prediction")
    except ValueError:
        return math.nan


def summary_markdown(
    rows: Sequence[CalibrationSummary],
    target: tuple[float, float] | None = None,
    target_corr: float | None = None,
    level: float = 0.9,
) -> str:
    """A Markdown table (one row per problem x setting) and, when targets are given, one
    line per row saying whether the recalibrated coverage at ``level`` lies in ``target``
    and whether the correlation reaches ``target_corr``."""
    if not rows:
        return "No problem x setting with both calibration and test tasks.\n"
    levels = rows[0].levels
    pct = [f"{100 * v:g}%" for v in levels]
    head = (["problem", "setting", "cal/test images"] + [f"raw {p}" for p in pct]
            + [f"prediction {p}" for p in pct] + [f"conformal {p}" for p in pct]
            + [f"scale {p}" for p in pct]
            + ["corr pooled", "corr median/image", "corr if calibrated"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        split = (f"{len(r.calibration_images)}/{len(r.test_images)}" if not r.folds
                 else f"{r.folds}-fold x {len(r.test_images)}")
        cells = [r.problem, r.setting, split]
        cells += [f"{r.raw[v]:.3f}" for v in levels]
        cells += [f"{r.raw_prediction.get(v, math.nan):.3f}" for v in levels]
        cells += [f"{r.recalibrated[v]:.3f}" for v in levels]
        cells += [f"{r.scale[v]:.2f}" for v in levels]
        cells += [f"{r.correlation:.2f}", f"{r.correlation_median:.2f}",
                  f"{r.correlation_calibrated:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    text += ("\nCoverage: fraction of test-image pixels inside the central interval (mean over "
             "test tasks); raw: the samples' quantiles; prediction: the normal prediction "
             "interval mean +- t_{ESS-1} std sqrt(1 + 1/ESS) (Posterior.interval "
             "kind='prediction'), which allows for the number of samples; conformal: split "
             "conformal scale fitted per level on the calibration images only; corr: Pearson "
             "|mean - truth| vs std (unchanged by the scale); "
             "corr if calibrated: its expected value were every error N(0, std^2) "
             "(calibrated_correlation).\n")
    if target is not None or target_corr is not None:
        text += "\n"
        for r in rows:
            parts = []
            if target is not None and level in r.recalibrated:
                ok = target[0] <= r.recalibrated[level] <= target[1]
                parts.append(f"{100 * level:g}% after conformal {r.recalibrated[level]:.3f} "
                             f"(raw {r.raw[level]:.3f}) in [{target[0]}, {target[1]}]: "
                             f"{'holds' if ok else 'FAILS'}")
            if target_corr is not None:
                ok = r.correlation >= target_corr
                parts.append(f"corr {r.correlation:.2f} >= {target_corr}: "
                             f"{'holds' if ok else 'FAILS'}")
            text += f"- {r.problem} / {r.setting}: " + "; ".join(parts) + "\n"
    return text


def write_calibration_plots(rows: Sequence[CalibrationSummary],
                            out: str | os.PathLike) -> list[Path]:
    """``calibration_curves.png`` (test split, before/after recalibration, one panel per
    problem) and ``error_vs_std.png`` (RMS error in std-quantile bins against the bin's mean
    std, log-log, diagonal = calibrated), written atomically into ``out``."""
    from ..plotting import new_figure, save_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems = sorted({r.problem for r in rows}) or ["(no data)"]
    fig, axes = new_figure(len(problems), (4.5, 4.0), purpose="calibration plots")
    for ax, problem in zip(axes, problems):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        for r in (r for r in rows if r.problem == problem):
            line = ax.plot(r.nominal, r.curve_raw, marker="o", ms=3, label=f"{r.solver} raw")
            ax.plot(r.nominal, r.curve_recalibrated, marker="s", ms=3, ls=":",
                    color=line[0].get_color(), label=f"{r.solver} conformal")
        ax.set_title(f"{problem} (test images)")
        ax.set_xlabel("nominal coverage of central interval")
        ax.set_ylabel("empirical coverage (fraction of pixels)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, loc="upper left")
    paths = [save_png(fig, out / "calibration_curves.png")]
    fig, axes = new_figure(len(problems), (4.5, 4.0), purpose="calibration plots")
    for ax, problem in zip(axes, problems):
        lo, hi = math.inf, 0.0
        for r in (r for r in rows if r.problem == problem):
            s, rms = _binned_rms(r.std, r.abs_error)
            ax.loglog(s, rms, marker="o", ms=3, label=f"{r.solver} (corr {r.correlation:.2f})")
            lo, hi = min(lo, *s, *rms), max(hi, *s, *rms)
        if math.isfinite(lo) and hi > 0:
            ax.loglog([lo, hi], [lo, hi], color="0.6", lw=1, ls="--", label="RMS error = std")
        ax.set_title(f"{problem} (test images)")
        ax.set_xlabel("posterior std (bin mean)")
        ax.set_ylabel("RMS error of the mean in the bin")
        ax.legend(fontsize=6, loc="upper left")
    paths.append(save_png(fig, out / "error_vs_std.png"))
    return paths


def _binned_rms(std: np.ndarray, abs_error: np.ndarray, bins: int = 12):
    """Mean std and RMS error in ``bins`` equal-count bins of std (positive bins only)."""
    order = np.argsort(std, kind="stable")
    s, e = std[order], abs_error[order]
    keep = s > 0
    s, e = s[keep], e[keep]
    parts = [p for p in np.array_split(np.arange(s.size), min(bins, max(s.size, 1))) if p.size]
    x = np.array([s[p].mean() for p in parts])
    y = np.array([np.sqrt((e[p] ** 2).mean()) for p in parts])
    ok = y > 0
    return x[ok], y[ok]
