"""``diffinv study SPEC.yaml [--workers N] [--scheduler ADDRESS] [--out DIR]`` and
``diffinv study report STORE [--out DIR]``.

The main parser (:mod:`diffinv.cli`) adds them with :func:`add_parsers`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parsers", "run_study_command"]


def add_parsers(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``study`` to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "study",
        help="run many reconstructions on Dask, or report on a study store",
        description="`diffinv study SPEC.yaml` runs the study's missing tasks on Dask (a "
        "local cluster, or --scheduler) into the store --out; `diffinv study report STORE` "
        "writes tables and plots of a store.  Needs `pip install diffinv[study]`.",
    )
    p.add_argument("spec", metavar="SPEC.yaml|report", help="study spec, or `report`")
    p.add_argument("store", nargs="?", default=None, metavar="STORE",
                   help="(report only) the study store directory")
    p.add_argument("--out", default=None,
                   help="store directory (default: ./study-NAME); for report: the report "
                   "directory (default STORE/report)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core, or per GPU)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--threads", type=int, default=1, help="torch threads per task (default 1)")
    p.add_argument("--retries", type=int, default=0,
                   help="extra tries of a task that raises (worker deaths always retry)")
    p.add_argument("--dashboard-address", default=":8787",
                   help="dashboard of the local cluster (default :8787)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=run_study_command)
    return p


def run_study_command(args: argparse.Namespace) -> int:
    """Run ``diffinv study ...``; returns the exit status (1 if some task failed)."""
    try:
        if args.spec == "report" and args.store is not None:
            return _report(args)
        if args.store is not None:
            raise ValueError(f"STORE: unexpected argument {args.store!r} (only after `report`)")
        return _run(args)
    except ImportError as err:
        print(f"diffinv: error: {err}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    paths = write_report(args.store, args.out)
    print(f"diffinv study: wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runner import run
    from .spec import load_spec

    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path(f"study-{spec.name}")
    try:
        result = run(spec, out=out, workers=args.workers, scheduler=args.scheduler,
                     threads_per_task=args.threads, retries=args.retries,
                     progress=not args.no_progress, dashboard_address=args.dashboard_address)
    except KeyboardInterrupt:
        print(f"diffinv study: interrupted; finished tasks are in {out}, run the same command "
              "again to resume", file=sys.stderr)
        return 130
    if result.failed:
        print(f"diffinv study: {len(result.failed)} task(s) failed; run the same command "
              "again to redo them", file=sys.stderr)
        return 1
    return 0
