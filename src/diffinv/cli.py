"""The ``diffinv`` command.

``diffinv reconstruct`` solves a built-in problem (``--problem``, default ``ct-sparse-view``,
:data:`diffinv.demos.DEFAULT_DEMO`) with a registered solver and writes the posterior (HDF5)
and figures (PNG).  ``diffinv solvers`` and ``diffinv problems`` list what is available.
"""

from __future__ import annotations

import argparse
import ast
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["main", "build_parser", "parse_option"]


def parse_option(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` with ``value`` read as a Python literal when possible."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--option: {key!r} is not a valid option name")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def _positive_int(flag: str) -> Any:
    """An argparse ``type`` accepting integers >= 1, with an error naming ``flag``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: expected an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag}: expected a positive integer, got {value}")
        return value

    return parse


def _seed(text: str) -> int:
    """An argparse ``type`` for ``--seed``: an integer in [0, 2**63 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed: expected an integer, got {text!r}") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(
            f"--seed: expected an integer in [0, 2**63 - 1], got {value}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``diffinv`` command."""
    parser = argparse.ArgumentParser(
        prog="diffinv",
        description="Scientific imaging inverse problems with diffusion-model priors.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser(
        "reconstruct",
        help="sample the posterior of a built-in problem and write results",
        description="Sample the posterior of a built-in problem; write posterior.h5, "
        "summary.json and PNG figures to --out.",
    )
    rec.add_argument(
        "--problem",
        default=None,
        help="built-in problem (see `diffinv problems`); with --data the kind: eht, mri or ct "
        "(default: detected from the file)",
    )
    rec.add_argument(
        "--data",
        nargs="+",
        default=None,
        metavar="PATH",
        help="reconstruct from data files (UVFITS, BART/fastMRI/.npy k-space, Data Exchange); "
        "several EHT files (bands, days) are combined",
    )
    rec.add_argument(
        "--prior",
        default=None,
        metavar="NAME|PATH",
        help="shipped prior name (`diffinv priors list`) or .pt checkpoint path instead of the "
        "problem's default; checked against the problem's channels, size and units; with "
        "EHT --data also 'lognormal' (log-normal field, exact tempered SMC)",
    )
    rec.add_argument("--solver", default=None, help="solver name (see `diffinv solvers`)")
    rec.add_argument(
        "--steps", type=_positive_int("--steps"), default=None, help="number of noise levels"
    )
    rec.add_argument(
        "--samples", type=_positive_int("--samples"), default=None,
        help="posterior samples (chains, particles); default 8, or the problem's own count"
    )
    rec.add_argument("--seed", type=_seed, default=0, help="random seed (problem and sampler)")
    rec.add_argument("--out", default="diffinv-output", help="output directory")
    rec.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results in a non-empty --out (otherwise it is refused)",
    )
    rec.add_argument(
        "--option",
        action="append",
        type=parse_option,
        default=[],
        metavar="KEY=VALUE",
        help="solver option, repeatable (e.g. --option zeta=0.5)",
    )
    rec.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    rec.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rec.add_argument("--no-figures", action="store_true", help="skip PNG figures")
    rec.add_argument(
        "--threads",
        type=_threads_arg,
        default=None,
        metavar="N",
        help="threads for torch, numba and finufft (a positive integer or 'auto'; default: "
        "DIFFINV_NUM_THREADS, else idle physical cores, see diffinv.threads)",
    )

    sub.add_parser("solvers", help="list solvers and their options")
    sub.add_parser("problems", help="list built-in problems")
    _add_optional_subcommands(sub)
    _add_study_subcommand(sub)
    return parser


def _threads_arg(text: str) -> int | None:
    from .threads import parse_threads

    try:
        return parse_threads(text, "--threads")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_study_subcommand(sub: Any) -> None:
    """``diffinv study`` (many reconstructions on Dask; see diffinv.study)."""
    from .study import cli as study_cli

    study_cli.add_parsers(sub)


def _add_optional_subcommands(sub: Any) -> None:
    """Subcommands contributed by optional modules (training, shipped priors)."""
    try:
        from .priors import train_cli
    except ImportError:
        return
    train_cli.add_parsers(sub)


def _cmd_solvers() -> int:
    from .solvers import available_solvers, solver_options

    for name in available_solvers():
        opts = ", ".join(f"{k}={v!r}" for k, v in solver_options(name).items())
        print(f"{name}: {opts}")
    return 0


def _cmd_problems() -> int:
    from .demos import DEFAULT_DEMO, available_demos, get_demo

    for name in available_demos():
        doc = (get_demo(name).__doc__ or "").strip().splitlines()
        mark = " (default)" if name == DEFAULT_DEMO else ""
        print(f"{name}{mark}: {doc[0] if doc else ''}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from .outdir import prepare_output_dir

    # checked, locked and cleaned before any sampling; the lock is held until the end
    with prepare_output_dir(args.out, overwrite=args.overwrite, known=RESULT_FILES) as outdir:
        return _reconstruct_into(args, outdir)


RESULT_FILES = (
    "posterior.h5", "summary.json", "mean.png", "std.png", "samples.png", "truth.png", "error.png"
)


def _reconstruct_into(args: argparse.Namespace, outdir: Any) -> int:
    from . import sample
    from .demos import DEFAULT_DEMO, get_demo
    from .demos.registry import accepts_prior, samples_for
    from .report import reconstruction_summary, write_figures, write_json
    from .thread_probe import settle_run_threads
    from .threads import apply_policy

    n_threads = apply_policy(args.threads)
    if args.data:
        from .data_problems.run import reconstruct_data

        return reconstruct_data(args, outdir, n_threads)
    out = outdir.path
    name = args.problem or DEFAULT_DEMO
    builder = get_demo(name)
    if args.prior is None:
        demo = builder(seed=args.seed)
    elif accepts_prior(name):
        demo = builder(seed=args.seed, prior=args.prior)
    else:
        raise ValueError(f"--prior: problem {name!r} has a fixed prior "
                         f"({(builder.__doc__ or '').strip().splitlines()[0]})")
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    defaults = demo.solver_defaults
    solver = args.solver or defaults.get("solver", "dps")
    n_samples = samples_for(demo, solver, args.samples)
    n_threads, how = settle_run_threads(args.threads, demo.problem, demo.prior, n_samples, dtype)
    steps = args.steps if args.steps is not None else defaults.get("steps", 100)
    options = dict(defaults.get("options", {})) if solver == defaults.get("solver") else {}
    options.update(dict(args.option))
    print(f"diffinv: {name}: {demo.description}", file=sys.stderr)
    print(
        f"diffinv: solver={solver} steps={steps} samples={n_samples} "
        f"threads={n_threads} ({how}) options={options}",
        file=sys.stderr,
    )
    # the fit warnings are printed below as "diffinv: WARNING" lines, not as Python warnings
    warnings.filterwarnings("ignore", message=r"diffinv\.sample\(", category=RuntimeWarning)
    posterior = sample(
        demo.problem,
        demo.prior,
        solver=solver,
        n_samples=n_samples,
        steps=steps,
        seed=args.seed,
        dtype=dtype,
        progress=not args.no_progress,
        physical_range=demo.metadata.get("physical_range"),
        **options,
    )
    posterior.metadata.update({"problem": name, **demo.metadata})
    if args.prior is not None:
        posterior.metadata["prior"] = args.prior
    summary = reconstruction_summary(posterior, demo)
    posterior.diagnostics.update({k: v for k, v in summary.items() if k != "files"})
    posterior.save(out / "posterior.h5")
    files = ["posterior.h5", "summary.json"]
    if not args.no_figures:
        files += write_figures(out, posterior, demo)
    summary["files"] = files
    write_json(out / "summary.json", summary)
    outdir.finish(files)  # with --overwrite: no stale result of an earlier run remains
    for key in ("psnr_mean", "reduced_chi2_mean", "coverage_90", "wall_seconds", "nfe"):
        if key in summary:
            print(f"diffinv: {key} = {summary[key]}", file=sys.stderr)
    print(f"diffinv: wrote {', '.join(files)} to {out}", file=sys.stderr)
    for message in summary.get("warnings", []):
        print(f"diffinv: WARNING: {message}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diffinv`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "reconstruct":
            return _cmd_reconstruct(args)
        if args.command == "solvers":
            return _cmd_solvers()
        if args.command == "problems":
            return _cmd_problems()
        return int(args.handler(args))
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"diffinv: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
