"""The diffinv command end to end on the built-in default problem."""

import json
import subprocess
import sys

import pytest

from diffinv import load_posterior
from diffinv.cli import main
from diffinv.demos import get_demo
from diffinv.operators.ct import counts_to_line_integrals
from diffinv.report import psnr


def test_reconstruct_default_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["reconstruct", "--out", str(out), "--steps", "20", "--samples", "4", "--no-progress"])
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "posterior.h5",
        "summary.json",
        "mean.png",
        "std.png",
        "samples.png",
        "truth.png",
        "error.png",
    } <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problem"] == "ct-sparse-view" and summary["nfe"] == 20
    # the default is sparse-view CT with the learned prior: its posterior mean must beat
    # filtered back-projection of the same counts
    demo = get_demo("ct-sparse-view")(seed=0)
    line_integrals = counts_to_line_integrals(demo.problem.y, demo.metadata["I0"])
    fbp = demo.problem.operator.fbp(line_integrals)
    assert summary["psnr_mean"] > psnr(fbp[0], demo.x_true[0]) + 2.0
    post = load_posterior(out / "posterior.h5")
    assert post.samples.shape == (4, 1, 32, 32)
    assert post.metadata["units"] == "1/mm"
    assert (out / "mean.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in names if n.startswith(".")]  # no temporary files left


def test_reconstruct_bad_arguments_exit_nonzero(tmp_path, capsys):
    assert main(["reconstruct", "--out", str(tmp_path), "--problem", "nope"]) == 2
    assert "problem: unknown problem 'nope'" in capsys.readouterr().err
    assert main(["reconstruct", "--out", str(tmp_path), "--option", "zetta=1", "--steps", "2"]) == 2
    assert "zetta" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reconstruct", "--option", "novalue"])


def test_listing_commands(capsys):
    assert main(["solvers"]) == 0
    assert "dps:" in capsys.readouterr().out
    assert main(["problems"]) == 0
    assert "ct-sparse-view (default)" in capsys.readouterr().out


def test_console_script_entry_point_runs():
    r = subprocess.run(
        [sys.executable, "-m", "diffinv.cli", "problems"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "gaussian-field" in r.stdout


def test_reconstruct_problem_with_another_prior(tmp_path, capsys):
    """--prior NAME works with --problem; the choice is recorded with the posterior."""
    out = tmp_path / "phase"
    args = ["reconstruct", "--problem", "phase-retrieval-cdp", "--prior", "natural-patches",
            "--steps", "3", "--samples", "2", "--no-progress", "--no-figures", "--out", str(out)]
    assert main(args) == 0
    post = load_posterior(out / "posterior.h5")
    assert post.metadata["prior"] == "natural-patches"
    assert "'natural-patches'" in json.loads((out / "summary.json").read_text())["description"]


@pytest.mark.parametrize("problem, prior, message", [
    ("ct-sparse-view", "natural-patches", "is a prior of images in 'grey level'"),
    ("mri-multicoil", "ct-phantom", "channels=1"),
    ("eht-crescent", "no-such-prior", "neither a shipped prior"),
    ("gaussian-field", "ct-phantom", "--prior: problem 'gaussian-field' has a fixed prior"),
])
def test_reconstruct_prior_that_does_not_fit_is_refused(tmp_path, capsys, problem, prior,
                                                        message):
    out = tmp_path / "run"
    assert main(["reconstruct", "--problem", problem, "--prior", prior, "--steps", "2",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "diffinv: error:" in err and message in err
    assert not (out / "posterior.h5").exists()
