"""Run one task: build the problem, sample the posterior, summarise, compute metrics.

:func:`execute_task` is the whole computation of a task, the same in-process and on a Dask
worker (:func:`run_on_worker` only chooses the device and the thread count around it), so a
task's stored result equals ``execute_task(task)`` run anywhere on the same device, bit for
bit on CPU.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..io import jsonable
from ..posterior import Posterior, weighted_quantile
from .device import select_device
from .metrics import compute_metrics
from .tasks import Task

__all__ = ["TaskResult", "execute_task", "run_on_worker", "build_demo", "clear_demo_cache"]

_DEMO_CACHE: OrderedDict[tuple[str, int, str, str], Any] = OrderedDict()
_DEMO_CACHE_SIZE = 4
_DEMO_LOCK = threading.Lock()


@dataclass
class TaskResult:
    """What a task produces (small enough to travel from a worker to the client).

    Attributes
    ----------
    task_id : str
    settings : dict
        The task's settings (see :class:`~diffinv.study.tasks.Task`).
    arrays : dict of str to numpy.ndarray
        ``mean`` and ``std`` (``image_shape``, the posterior's dtype), ``quantiles``
        (``(len(settings["quantiles"]), *image_shape)``; absent for complex samples),
        ``truth`` (``image_shape``, when known), ``samples`` (``(n, *image_shape)``, when
        ``save_samples``), ``weights`` (``(n,)`` float64, weighted posteriors),
        ``calibration_nominal`` / ``calibration_empirical`` (float64 ``(19,)``).
    metrics : dict of str to float
        See :mod:`diffinv.study.metrics`.
    diagnostics : dict
        The posterior's diagnostics (JSON values; ``warnings`` lists failed-fit sentences,
        which execute_task records there instead of emitting RuntimeWarnings).
    metadata : dict
        The posterior's and the problem's metadata, the resolved solver options.
    info : dict
        Where and how it ran: ``device``, ``threads``, ``worker``, ``host``, ``pid``,
        ``started`` (Unix time, s), ``task_seconds`` (wall time of the whole task, s),
        ``torch``, ``python``.
    """

    task_id: str
    settings: dict[str, Any]
    arrays: dict[str, np.ndarray]
    metrics: dict[str, float]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def build_demo(settings: dict[str, Any], device: str = "cpu") -> Any:
    """The task's problem (:class:`diffinv.demos.Demo`), cached per process.

    Building some problems costs seconds (fitted or learned priors), so a worker keeps the
    last few it built; sampling never modifies a demo (the study tests check results against
    a fresh build bit for bit).
    """
    from ..demos import get_demo

    key = (
        settings["problem"],
        int(settings["image"]),
        json.dumps(settings["problem_options"], sort_keys=True),
        json.dumps(settings.get("data_files")),
        device,
    )
    with _DEMO_LOCK:  # workers with several threads share the cache
        if key in _DEMO_CACHE:
            _DEMO_CACHE.move_to_end(key)
            return _DEMO_CACHE[key]
    if settings.get("data_files"):
        from ..data_problems.run import build_data_problem

        _, demo = build_data_problem(settings["data_files"], settings.get("data_kind"),
                                     settings.get("data_prior"))
    else:
        demo = get_demo(settings["problem"])(seed=int(settings["image"]),
                                             **settings["problem_options"])
    if device != "cpu":
        demo.problem = demo.problem.to(device)
        if demo.latent is not None:  # its field and operator moved with the problem in place
            demo.latent.image_problem.to(device)
        if hasattr(demo.prior, "to"):
            demo.prior = demo.prior.to(device)
    with _DEMO_LOCK:
        _DEMO_CACHE[key] = demo
        while len(_DEMO_CACHE) > _DEMO_CACHE_SIZE:
            _DEMO_CACHE.popitem(last=False)
    return demo


def clear_demo_cache() -> None:
    """Forget the problems :func:`build_demo` built in this process."""
    with _DEMO_LOCK:
        _DEMO_CACHE.clear()


def execute_task(task: Task, device: str = "cpu", threads: int | None = 1) -> TaskResult:
    """Run ``task`` in this process and return its :class:`TaskResult`.

    Parameters
    ----------
    task : Task
    device : str
        torch device (``"cpu"``, ``"cuda:0"``, ...).
    threads : int or None
        ``torch.set_num_threads`` for the task (``None`` leaves it).  Results are bit-for-bit
        reproducible for a given device and thread count.
    """
    from ..demos.registry import image_space
    from ..sampling import sample

    if threads is not None:
        torch.set_num_threads(int(threads))
    started = time.time()
    t0 = time.perf_counter()
    s = task.settings
    demo = build_demo(s, device)
    options = dict(s["options"])
    defaults = demo.solver_defaults
    if s["problem_defaults"] and defaults.get("solver") == s["solver"]:
        options = {**defaults.get("options", {}), **options}
    dtype = torch.float64 if s["dtype"] == "float64" else torch.float32
    with warnings.catch_warnings():  # fit warnings are kept in diagnostics["warnings"]
        warnings.filterwarnings("ignore", message=r"diffinv\.sample\(", category=RuntimeWarning)
        posterior = sample(demo.problem, demo.prior, solver=s["solver"],
                           n_samples=s["samples"], steps=s["steps"], seed=s["seed"],
                           dtype=dtype, physical_range=demo.metadata.get("physical_range"),
                           **options)
    posterior, demo = image_space(posterior, demo)  # a latent prior's samples -> images
    truth = demo.x_true
    metrics, arrays = compute_metrics(posterior, truth, s)
    arrays.update(_summaries(posterior, truth, s))
    metadata = {**posterior.metadata, "problem": s["problem"], "problem_metadata":
                demo.metadata, "resolved_options": options}
    info = {
        "device": device,
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": started,
        "task_seconds": time.perf_counter() - t0,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    return TaskResult(task.id, dict(s), arrays, metrics, jsonable(posterior.diagnostics),
                      jsonable(metadata), info)


def _summaries(
    posterior: Posterior, truth: torch.Tensor | None, s: dict[str, Any]
) -> dict[str, np.ndarray]:
    out = {"mean": posterior.mean.numpy(), "std": posterior.std.numpy()}
    if not posterior.samples.is_complex():
        qs = [weighted_quantile(posterior.samples, posterior.weights, q) for q in s["quantiles"]]
        out["quantiles"] = torch.stack(qs).numpy()
    if truth is not None:
        out["truth"] = truth.detach().cpu().reshape(posterior.image_shape).numpy()
    if s["save_samples"]:
        out["samples"] = posterior.samples.numpy()
    if posterior.weights is not None:
        out["weights"] = posterior.weights.numpy()
    return out


def run_on_worker(task: Task, threads: int = 1) -> TaskResult:
    """Dask entry point: pick the device for this worker, then :func:`execute_task`."""
    name = None
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        pass
    device = select_device(task.device, name)
    result = execute_task(task, device=device, threads=threads)
    result.info["worker"] = str(name)
    return result
