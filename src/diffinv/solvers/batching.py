"""Run many chains in chunks of at most ``max_batch`` so peak memory stays bounded.

Independent chains are processed one chunk after another with the same
:class:`torch.Generator`, so a seed reproduces a run bit for bit for a given ``max_batch``
(changing ``max_batch`` changes the order of random draws, hence the samples, but not their
distribution).  Memory then grows with ``max_batch`` rather than ``n_samples``.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import Any

import torch

from ..validation import optional, positive_int
from .context import RunContext
from .registry import SolverOutput

__all__ = ["check_max_batch", "run_chunked", "merge_diagnostics"]


def check_max_batch(max_batch: int | None) -> None:
    """Raise ``ValueError`` unless ``max_batch`` is ``None`` or a positive integer."""
    optional(positive_int, "max_batch", max_batch)


def run_chunked(
    run: Callable[[RunContext], SolverOutput], ctx: RunContext, max_batch: int | None
) -> SolverOutput:
    """Call ``run(chunk_ctx)`` on consecutive chunks of the chains and join the outputs.

    Parameters
    ----------
    run : callable
        ``run(chunk_ctx) -> SolverOutput`` runs ``chunk_ctx.n_samples`` chains;
        ``chunk_ctx.chain_offset`` is the index of the chunk's first chain (for callbacks).
    ctx : RunContext
        The whole run; ``ctx.n_samples`` is the total number of chains.
    max_batch : int or None
        Largest chunk; ``None`` runs all chains together.

    Returns
    -------
    SolverOutput
        Samples concatenated in chain order, ``nfe`` per chain (the same for every chunk),
        diagnostics merged by :func:`merge_diagnostics` plus ``n_chunks``.
    """
    check_max_batch(max_batch)
    n_samples = ctx.n_samples
    if max_batch is None or max_batch >= n_samples:
        out = run(ctx)
        out.diagnostics.setdefault("n_chunks", 1)
        return out
    outs: list[SolverOutput] = []
    sizes: list[int] = []
    for start in range(0, n_samples, max_batch):
        n = min(max_batch, n_samples - start)
        outs.append(run(ctx.chunk(n, start)))
        sizes.append(n)
    samples = torch.cat([o.samples for o in outs], dim=0)
    weights = None
    if all(o.weights is not None for o in outs):
        weights = torch.cat([o.weights for o in outs], dim=0)
    diagnostics = merge_diagnostics([o.diagnostics for o in outs], sizes)
    diagnostics["n_chunks"] = len(outs)
    return SolverOutput(
        samples=samples, nfe=max(o.nfe for o in outs), weights=weights, diagnostics=diagnostics
    )


def merge_diagnostics(parts: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Merge per-chunk diagnostics: numbers and equal-length number lists are averaged.

    The average is weighted by chunk size; a key whose name starts with ``max_`` takes the
    maximum instead; anything else keeps the first chunk's value.
    """
    total = float(sum(sizes))
    merged: dict[str, Any] = {}
    for key, first in parts[0].items():
        values = [p.get(key) for p in parts]
        if all(_is_number(v) for v in values):
            if key.startswith("max_"):
                merged[key] = max(values)
            else:
                merged[key] = sum(v * n for v, n in zip(values, sizes)) / total
        elif all(isinstance(v, list) and v and all(_is_number(u) for u in v) for v in values) and (
            len({len(v) for v in values}) == 1
        ):
            merged[key] = [
                sum(v[i] * n for v, n in zip(values, sizes)) / total for i in range(len(first))
            ]
        else:
            merged[key] = first
    return merged


def _is_number(v: Any) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)
