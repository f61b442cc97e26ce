"""Where a task runs: CPU, or one GPU per Dask worker.

GPU studies (``device: cuda`` in the spec) run one task per GPU at a time:

* With the default ``LocalCluster`` the runner starts one single-threaded worker per visible
  GPU (``CUDA_VISIBLE_DEVICES`` is respected: ``CUDA_VISIBLE_DEVICES=2,3`` gives two workers)
  with the Dask resource ``GPU=1`` each, and every task asks for ``GPU=1``.  Worker ``k``
  (LocalCluster names workers ``0, 1, ...``) uses ``cuda:k`` (modulo the visible count).
* On an existing cluster (``--scheduler``), start one worker per GPU, each seeing only its
  own GPU and declaring the resource, e.g.::

      CUDA_VISIBLE_DEVICES=0 dask worker tcp://HOST:8786 --nthreads 1 --resources GPU=1
      CUDA_VISIBLE_DEVICES=1 dask worker tcp://HOST:8786 --nthreads 1 --resources GPU=1

  (``dask-cuda``'s ``dask cuda worker`` does the same.)  A worker that sees exactly one GPU
  uses ``cuda:0``.  The runner refuses to submit GPU tasks to a cluster without ``GPU``
  resources rather than wait forever.

``device: auto`` uses a GPU when the worker sees one and the CPU otherwise.
"""

from __future__ import annotations

import os

__all__ = ["visible_gpus", "select_device"]


def visible_gpus(environ: dict[str, str] | None = None, device_count: int | None = None) -> int:
    """Number of GPUs this process may use.

    ``CUDA_VISIBLE_DEVICES`` (when set) limits the count: an empty value or ``-1`` hides all
    GPUs; otherwise its comma-separated entries are counted (at most ``device_count``).
    ``device_count`` defaults to ``torch.cuda.device_count()``.
    """
    env = os.environ if environ is None else environ
    if device_count is None:
        import torch

        device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return int(device_count)
    entries = [e.strip() for e in value.split(",") if e.strip()]
    if not entries or entries[0] == "-1":
        return 0
    return min(len(entries), int(device_count))


def select_device(requested: str, worker_name: object = None, n_gpus: int | None = None) -> str:
    """The torch device string for a task.

    Parameters
    ----------
    requested : {"cpu", "cuda", "auto"}
        The spec's ``device``.
    worker_name : object, optional
        The Dask worker's name; an integer (or integer string) ``k`` picks GPU
        ``k mod n_gpus``; anything else picks GPU 0.
    n_gpus : int, optional
        GPUs visible to this process (default :func:`visible_gpus`).

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda:i"``.

    Raises
    ------
    RuntimeError
        ``requested == "cuda"`` on a worker that sees no GPU.
    """
    if requested == "cpu":
        return "cpu"
    if requested not in ("cuda", "auto"):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'auto', got {requested!r}")
    n = visible_gpus() if n_gpus is None else int(n_gpus)
    if n == 0:
        if requested == "auto":
            return "cpu"
        raise RuntimeError(
            "device: the spec asks for cuda but this worker sees no GPU "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r})"
        )
    try:
        index = int(str(worker_name)) % n
    except ValueError:
        index = 0
    return f"cuda:{index}"
