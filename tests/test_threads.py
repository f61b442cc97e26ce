"""The thread policy: parsing of DIFFINV_NUM_THREADS / --threads, applying and restoring."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numba
import pytest
import torch

from diffinv import threads
from diffinv.cli import main


@pytest.fixture(autouse=True)
def restore_threads():
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(old_torch)
    numba.set_num_threads(old_numba)


@pytest.mark.parametrize(
    "value, expected", [("3", 3), (" 2 ", 2), (1, 1), ("auto", None), ("", None), (None, None)]
)
def test_parse_threads_accepts(value, expected):
    assert threads.parse_threads(value) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", 0, True, 2.0])
def test_parse_threads_rejects_naming_the_source(value):
    with pytest.raises(ValueError, match="DIFFINV_NUM_THREADS: expected a positive integer"):
        threads.parse_threads(value)
    with pytest.raises(ValueError, match="--threads: expected a positive integer"):
        threads.parse_threads(value, "--threads")


def test_env_var_overrides_the_rule(monkeypatch):
    monkeypatch.setenv("DIFFINV_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("DIFFINV_NUM_THREADS", "auto")
    assert 1 <= threads.default_threads() <= threads.usable_cores()
    monkeypatch.setenv("DIFFINV_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="DIFFINV_NUM_THREADS"):
        threads.default_threads()


def test_default_never_exceeds_the_idle_physical_cores(monkeypatch):
    monkeypatch.delenv("DIFFINV_NUM_THREADS", raising=False)
    n = threads.default_threads()
    assert 1 <= n <= threads.usable_cores() <= len(os.sched_getaffinity(0))


def test_default_leaves_cores_to_a_running_process(monkeypatch):
    # a real CPU-bound process: the default must leave it at least one core (or give 1)
    monkeypatch.delenv("DIFFINV_NUM_THREADS", raising=False)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        seen = []
        for _ in range(50):  # the run queue is sampled: wait until the process shows in it
            seen.append(threads.busy_processes())
            if seen[-1] >= 1:
                break
            time.sleep(0.02)
        assert max(seen) >= 1
        assert threads.default_threads() <= max(1, threads.usable_cores() - 1)
    finally:
        busy.kill()
        busy.wait()


def test_thread_limit_applies_and_restores():
    torch.set_num_threads(2)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    before = (torch.get_num_threads(), numba.get_num_threads())
    with threads.thread_limit(1) as n:
        assert n == 1 and torch.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert threads.threads_for(1e12) == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


def test_threads_for_is_serial_for_small_work():
    torch.set_num_threads(2)
    assert threads.threads_for(10) == 1
    assert threads.threads_for(100 * threads.MIN_WORK_PER_THREAD) == 2
    assert threads.threads_for(100 * threads.MIN_WORK_PER_THREAD, max_threads=1) == 1


def test_work_threads_lowers_for_small_work_and_restores():
    torch.set_num_threads(2)
    with threads.work_threads(10) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads.work_threads(100 * threads.MIN_WORK_PER_THREAD) as n:
        assert n == 2 and torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), threads.work_threads(10):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_sparse_ct_runs_serial_for_small_images(monkeypatch):
    from diffinv.operators.ct import ParallelBeamRadon

    op = ParallelBeamRadon(16, 8, backend="sparse")
    seen = []
    real_mm = torch.sparse.mm

    def spy(*args):
        seen.append(torch.get_num_threads())
        return real_mm(*args)

    monkeypatch.setattr(torch.sparse, "mm", spy)
    torch.set_num_threads(2)
    x = torch.rand(2, 1, 16, 16)
    y = op(x)
    op.adjoint(y)
    assert seen == [1, 1] and torch.get_num_threads() == 2


def test_per_worker():
    assert 1 <= threads.per_worker(64) <= threads.per_worker(1)
    with pytest.raises(ValueError, match="n_workers"):
        threads.per_worker(0)


def test_cli_rejects_bad_threads(capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", "--threads", "0"])
    assert "--threads: expected a positive integer" in capsys.readouterr().err


def test_cli_reports_a_bad_env_var(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DIFFINV_NUM_THREADS", "lots")
    assert main(["reconstruct", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "DIFFINV_NUM_THREADS: expected a positive integer" in capsys.readouterr().err


def _sleeper(one: float, more: float):
    """Work that takes ``one`` seconds at 1 thread and ``more`` at more threads."""

    def fn() -> None:
        time.sleep(one if torch.get_num_threads() == 1 else more)

    return fn


def test_fastest_count_keeps_one_thread_when_more_is_slower():
    torch.set_num_threads(1)
    chosen, times = threads.fastest_count(_sleeper(0.002, 0.02), (1, 2), repeats=2)
    assert chosen == 1 and set(times) == {1, 2} and times[2] > times[1]
    assert torch.get_num_threads() == 1  # restored


def test_fastest_count_takes_more_threads_only_when_clearly_faster():
    torch.set_num_threads(1)
    assert threads.fastest_count(_sleeper(0.02, 0.002), (2, 1))[0] == 2
    # 2 % faster is within the margin: not worth a second thread
    assert threads.fastest_count(_sleeper(0.0100, 0.0098), (1, 2), margin=0.9)[0] == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [({"counts": ()}, "counts"), ({"counts": (0, 1)}, "counts"), ({"repeats": 0}, "repeats"),
     ({"margin": 1.5}, "margin")],
)
def test_fastest_count_rejects_bad_arguments(kwargs, match):
    args = {"counts": (1, 2), **kwargs}
    with pytest.raises(ValueError, match=match):
        threads.fastest_count(lambda: None, **args)


def test_choose_run_threads_times_a_step_of_the_run():
    from diffinv.demos import get_demo
    from diffinv.thread_probe import choose_run_threads, run_step

    demo = get_demo("ct-sparse-view")(seed=0)
    run_step(demo.problem, demo.prior, 2)()  # runs: a denoiser call and a likelihood gradient
    n, times = choose_run_threads(demo.problem, demo.prior, 2, max_threads=2)
    assert n in (1, 2) and set(times) == {1, 2} and torch.get_num_threads() == n
    assert choose_run_threads(demo.problem, demo.prior, 2, max_threads=1) == (1, {})


def test_cli_reports_how_the_thread_count_was_chosen(tmp_path, capsys):
    args = ["reconstruct", "--steps", "2", "--samples", "1", "--no-figures", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--threads", "1"]) == 0
    assert "threads=1 (as requested)" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "(timed one step: 1 thread" in err or "(1 core free)" in err
