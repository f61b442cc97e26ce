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


def _started(proc) -> None:
    """Wait until the CLI run ``proc`` has started sampling (its directory is locked)."""
    line = proc.stderr.readline()
    while "solver=" not in line:
        assert line, "the run ended before sampling"
        line = proc.stderr.readline()


def test_cli_runs_reuse_concurrency_kill_and_overwrite(tmp_path):
    out = tmp_path / "out"
    run = dict(env=_env(), capture_output=True, text=True, timeout=300)
    # 1. a finished run with figures
    first = subprocess.run([*[c for c in CLI if c != "--no-figures"], "--steps", "2",
                            "--out", str(out)], **run)
    assert first.returncode == 0, first.stderr
    assert (out / "truth.png").exists()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # 2. reusing the directory is refused before sampling, nothing touched
    refused = subprocess.run([*CLI, "--steps", "2", "--seed", "3", "--out", str(out)], **run)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert "solver=" not in refused.stderr
    # 3. a long run holds the lock; a concurrent one (even with --overwrite) fails at once
    long = subprocess.Popen([*CLI, "--steps", "1000000", "--out", str(out), "--overwrite"],
                            env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _started(long)
        second = subprocess.run([*CLI, "--steps", "2", "--out", str(out), "--overwrite"], **run)
        assert long.poll() is None  # refused while the first still runs
        assert second.returncode == 2
        assert "in use by another diffinv run" in second.stderr and str(out) in second.stderr
        # 4. SIGKILL the long run in the middle: the previous results are intact
        long.send_signal(signal.SIGKILL)
        long.wait(timeout=30)
    finally:
        if long.poll() is None:
            long.kill()
    assert long.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # 5. the kernel released the dead run's lock; --overwrite replaces the whole set
    again = subprocess.run([*CLI, "--steps", "2", "--seed", "1", "--out", str(out),
                            "--overwrite"], **run)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == ["posterior.h5", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == ["posterior.h5", "summary.json"] and summary["nfe"] == 2
