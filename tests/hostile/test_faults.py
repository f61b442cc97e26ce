"""Faults with real processes: SIGKILL during a write and during a CLI run, two concurrent
CLI runs on one output directory, and the output directory checked afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffinv.outdir import prepare_output_dir

SRC = str(Path(__file__).resolve().parents[2] / "src")
CLI = [sys.executable, "-m", "diffinv.cli", "reconstruct", "--problem", "gaussian-field",
       "--solver", "dps", "--samples", "2", "--no-progress", "--no-figures"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def _wait_for(predicate, proc, timeout=120.0):
    start = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended early ({proc.returncode}): {err}")
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.05)


SLOW_WRITER = """
import sys, time
from pathlib import Path
from diffinv.io import atomic_write
def write(tmp):
    with open(tmp, "w") as f:
        f.write("partial new content")
        f.flush()
        Path(sys.argv[2]).write_text("writing")
        time.sleep(60)
atomic_write(sys.argv[1], write)
"""


def test_sigkill_during_an_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "posterior.h5"
    target.write_text("previous result")
    flag = tmp_path / "flag"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target), str(flag)],
                            env=_env(), stderr=subprocess.PIPE, text=True)
    _wait_for(flag.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "previous result"
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert left and left[0].startswith(".posterior.h5.")  # the killed run's partial file
    flag.unlink()
    with pytest.raises(ValueError, match="not empty"):  # previous result kept, refused
        prepare_output_dir(tmp_path, known=("posterior.h5",))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # cleaned up
    assert target.read_text() == "previous result"


def test_sigkill_during_a_cli_run_then_rerun(tmp_path):
    out = tmp_path / "out"
    first = subprocess.run([*CLI, "--steps", "3", "--out", str(out)], env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = (out / "posterior.h5").read_bytes()
    proc = subprocess.Popen([*CLI, "--steps", "100000", "--out", str(out), "--overwrite"],
                            env=_env(), stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    while "solver=" not in line:  # sampling has started, the directory is locked
        assert line, "the run ended before sampling"
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (out / "posterior.h5").read_bytes() == before  # nothing lost
    again = subprocess.run([*CLI, "--steps", "3", "--seed", "1", "--out", str(out),
                            "--overwrite"], env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr  # the kernel released the dead run's lock
    assert json.loads((out / "summary.json").read_text())["files"] == [
        "posterior.h5", "summary.json"]


def test_two_concurrent_runs_on_one_directory(tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen([*CLI, "--steps", "400", "--out", str(out)], env=_env(),
                             stderr=subprocess.PIPE, text=True)
    line = first.stderr.readline()
    while "solver=" not in line:
        assert line, "the first run ended before sampling"
        line = first.stderr.readline()
    start = time.monotonic()
    second = subprocess.run([*CLI, "--steps", "3", "--out", str(out)], env=_env(),
                            capture_output=True, text=True, timeout=300)
    second_done = first.poll() is None  # refused while the first still runs
    err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert "in use by another diffinv run" in second.stderr and str(out) in second.stderr
    assert second_done, f"the second run was not refused at once ({time.monotonic() - start:.1f}s)"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["nfe"] == 400  # the first run's results, complete
    assert sorted(p.name for p in out.iterdir()) == ["posterior.h5", "summary.json"]


def test_reuse_is_refused_and_overwrite_removes_stale_figures(tmp_path):
    out = tmp_path / "out"
    cli = [c for c in CLI if c != "--no-figures"]
    first = subprocess.run([*cli, "--steps", "2", "--out", str(out)], env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert (out / "truth.png").exists()
    posterior = (out / "posterior.h5").read_bytes()
    refused = subprocess.run([*CLI, "--steps", "2", "--seed", "3", "--out", str(out)],
                             env=_env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert "solver=" not in refused.stderr  # refused before sampling
    assert (out / "posterior.h5").read_bytes() == posterior
    replaced = subprocess.run([*CLI, "--steps", "2", "--seed", "3", "--out", str(out),
                               "--overwrite"], env=_env(), capture_output=True, text=True,
                              timeout=300)
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["posterior.h5", "summary.json"]
