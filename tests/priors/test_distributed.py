"""Real multi-process training: ``torchrun`` with 2 CPU processes (gloo), no mocks.

* The loss curve of a 2-process run equals that of a 1-process run with the same global
  batch to a relative 1e-4 (every rank draws the same global batch and trains on its half;
  DDP averages the gradients, so only the floating-point summation order differs).
* A 2-process run whose rank 1 is SIGKILLed resumes from its checkpoint with a different
  number of processes (1) and then follows the uninterrupted 1-process run, again to 1e-4.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import diffinv
from diffinv.cli import main

psutil = pytest.importorskip("psutil")

RTOL = 1e-4


def _train_args(out, steps, *extra):
    return ["train", "--dataset", "disks", "--image-size", "8", "--steps", str(steps),
            "--out", str(out), "--batch-size", "8", "--base-width", "8", "--width-mults",
            "1,2", "--pool-size", "32", "--checkpoint-every", "2", "--log-every", "1",
            "--eval-images", "4", "--grid-images", "0", "--no-progress", "--device", "cpu",
            "--lr", "3e-3", *extra]


def _torchrun(out, steps, log):
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(diffinv.__file__).parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "diffinv.cli", *_train_args(out, steps, "--threads", "1")]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _losses(out):
    lines = (Path(out) / "training_log.jsonl").read_text().splitlines()
    return [json.loads(ln)["loss"] for ln in lines]


def _step(out):
    try:
        return int(torch.load(Path(out) / "checkpoint.pt", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


def _rank_process(parent, rank, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        for child in psutil.Process(parent.pid).children(recursive=True):
            try:
                if child.environ().get("RANK") == str(rank):
                    return child
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.05)
    raise AssertionError(f"no rank-{rank} worker appeared")


@pytest.mark.slow  # ~20 s alone (two torchrun launches); up to ~60 s on the loaded CI box
def test_torchrun_two_processes_match_one_and_resume_after_kill(tmp_path):
    torch.set_num_threads(1)
    log = open(tmp_path / "torchrun.log", "w")
    # 1) uninterrupted 2-process run
    two = _torchrun(tmp_path / "two", 6, log)
    # 2) meanwhile start the run to be killed: SIGKILL rank 1 after its first checkpoint
    killed = _torchrun(tmp_path / "killed", 400, log)
    victim = _rank_process(killed, 1)
    end = time.time() + 90
    while _step(tmp_path / "killed") < 2:
        assert killed.poll() is None and time.time() < end, (tmp_path / "torchrun.log"
                                                             ).read_text()[-3000:]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) != 0  # torchrun reports the failed worker
    assert two.wait(timeout=120) == 0, (tmp_path / "torchrun.log").read_text()[-3000:]
    log.close()
    done = _step(tmp_path / "killed")
    assert 2 <= done < 400

    # 3) one-process reference, long enough for both comparisons
    n_ref = max(6, done + 3)
    assert main(_train_args(tmp_path / "ref", n_ref)) == 0
    ref = _losses(tmp_path / "ref")
    assert len(ref) == n_ref

    two_losses = _losses(tmp_path / "two")
    assert len(two_losses) == 6
    torch.testing.assert_close(torch.tensor(two_losses), torch.tensor(ref[:6]), rtol=RTOL,
                               atol=0)
    card = json.loads((tmp_path / "two" / "prior.json").read_text())
    assert card["processes"] == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "checkpoint.pt", "prior.json", "prior.pt", "training_log.jsonl"]  # rank 0 only

    # 4) resume the killed 2-process run with 1 process, 3 steps past its checkpoint
    assert main(_train_args(tmp_path / "killed", done + 3)) == 0
    resumed = _losses(tmp_path / "killed")
    assert len(resumed) == done + 3
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(ref[:done + 3]), rtol=RTOL,
                               atol=0)
