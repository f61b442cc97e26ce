"""Hostile inputs and faults: a catalogue of cases, and a classifier that runs them.

Each :class:`Case` does one bad thing to the package (a malformed tensor, a damaged file, a
reused output directory ...) and says what a trustworthy package does: raise ``raises`` with a
message matching ``match`` (naming the argument or file), or, when ``raises`` is ``None``,
return something ``check`` accepts.  :func:`classify` runs a case in a scratch directory and
sorts the outcome:

* ``clear`` - the expected exception with a message naming the argument or file, or correct
  handling;
* ``obscure`` - another exception, or a message that does not name what is wrong;
* ``silent`` - no error, but the result is wrong (or an expected error did not come);
* ``loss`` - a data-loss case whose check found results lost or mixed.

``tests/hostile`` asserts every case is ``clear``; ``benchmarks/hostile_inputs.py`` prints
the counts.  The cases themselves live in :mod:`diffinv.testing.hostile_cases`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Case", "classify", "OUTCOMES"]

OUTCOMES = ("clear", "obscure", "silent", "loss")


@dataclass(frozen=True)
class Case:
    """One hostile input or fault.

    Attributes
    ----------
    name : str
        Unique identifier.
    run : callable
        ``run(tmp: Path) -> result``; ``tmp`` is an empty scratch directory.
    raises : type or None
        Exception type a trustworthy package raises; ``None`` when it must succeed.
    match : str
        Regular expression the message must contain (the argument or file name); ``{tmp}``
        is replaced by the escaped scratch directory.
    check : callable or None
        ``check(result, tmp) -> bool`` for cases that must succeed.
    data : bool
        A data-loss case: a failed check counts as ``loss`` rather than ``silent``.
    """

    name: str
    run: Callable[[Path], Any]
    raises: type[BaseException] | None = None
    match: str = ""
    check: Callable[[Any, Path], bool] | None = None
    data: bool = False


def classify(case: Case, tmp: Path) -> tuple[str, str]:
    """Run ``case`` in the empty directory ``tmp``; return ``(outcome, detail)``."""
    tmp = Path(tmp)
    pattern = case.match.replace("{tmp}", re.escape(str(tmp)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.run(tmp)
    except Exception as err:  # noqa: BLE001 - classifying arbitrary failures is the point
        detail = f"{type(err).__name__}: {err}"
        if case.raises is not None and isinstance(err, case.raises) and re.search(
            pattern, str(err)
        ):
            return "clear", detail
        return "obscure", detail
    if case.raises is not None:
        return ("loss" if case.data else "silent"), f"no {case.raises.__name__} raised"
    ok = case.check is None or bool(case.check(result, tmp))
    if ok:
        return "clear", "handled"
    return ("loss" if case.data else "silent"), "check failed"
