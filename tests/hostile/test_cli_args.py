"""Bad command-line arguments: refused before any sampling with a message naming them."""

from __future__ import annotations

import pytest

from diffinv.cli import main


def _run(capsys, *args):
    try:
        code = main(["reconstruct", "--problem", "gaussian-field", "--no-progress",
                     "--no-figures", *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--steps", "0"], "--steps: expected a positive integer"),
        (["--steps", "-3"], "--steps: expected a positive integer"),
        (["--samples", "0"], "--samples: expected a positive integer"),
        (["--seed", str(10**30)], "--seed: expected an integer in [0, 2**63 - 1]"),
        (["--seed", "-1"], "--seed: expected an integer in [0, 2**63 - 1]"),
        (["--out", ""], "--out: expected a directory path, got an empty string"),
    ],
)
def test_bad_arguments_are_named(capsys, tmp_path, args, needle):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "o")]
    code, err = _run(capsys, *args)
    assert code == 2
    assert needle in err
    assert "solver=" not in err


def test_unwritable_out_is_refused_before_sampling(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (str(blocker / "sub"), str(blocker), "/proc/diffinv-out"):
        code, err = _run(capsys, "--out", out, "--steps", "2")
        assert code == 2, err
        assert "--out:" in err and out in err
        assert "solver=" not in err  # nothing sampled


def test_a_failed_fit_is_printed_and_recorded(capsys, tmp_path):
    import json

    out = tmp_path / "o"
    code, err = _run(capsys, "--solver", "dps", "--option", "zeta=0", "--steps", "5",
                     "--samples", "2", "--out", str(out))
    assert code == 0, err
    assert "diffinv: WARNING: fit: the posterior mean misfits the data" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reduced_chi2_mean"] > 10
    assert summary["warnings"] and summary["warnings"][0].startswith("fit: ")
