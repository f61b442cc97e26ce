"""Every hostile input or fault of the catalogue gets a clear error or correct handling.

The catalogue (diffinv.testing.hostile_cases) holds the issue-17 cases: operators fed the
wrong shapes, types or empty batches, noise models given impossible data, sampling requests
that cannot work, every reader on empty, text, truncated and damaged files, and output
directories that would lose data.  ``classify`` runs each one for real; anything but
``clear`` fails with the exception or finding.
"""

import pytest

from diffinv.testing.hostile import Case, classify
from diffinv.testing.hostile_cases import all_cases

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_handled_clearly(case, tmp_path):
    outcome, detail = classify(case, tmp_path)
    assert outcome == "clear", f"{case.name}: {outcome} ({detail})"


def test_classifier_tells_the_outcomes_apart(tmp_path):
    def boom(t):
        raise KeyError("samples")

    cases = [
        Case("clear", lambda t: int("x"), ValueError, r"invalid literal"),
        Case("wrong type", boom, ValueError, r"samples"),
        Case("unnamed", lambda t: int("x"), ValueError, r"^count: "),
        Case("no error", lambda t: 1, ValueError, r"x"),
        Case("wrong result", lambda t: 1, check=lambda r, t: r == 2),
        Case("lost", lambda t: 1, check=lambda r, t: False, data=True),
    ]
    got = [classify(c, tmp_path)[0] for c in cases]
    assert got == ["clear", "obscure", "obscure", "silent", "silent", "loss"]
