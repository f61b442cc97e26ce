"""Every public operator on shapes and dtypes around its input shape (see
:mod:`diffinv.testing.hostile`): a valid batch must give ``(batch, *out_shape)``, anything else
a ``ValueError`` whose message starts with ``x:``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .hostile import Case

__all__ = ["public_operators", "operator_input_is_valid", "sweep_inputs", "operator_sweep_cases"]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


REAL_ONLY = ("RealToComplex", "MultiCoilMRI@RealToComplex", "ParallelBeamRadon", "FanBeamRadon")


def public_operators() -> dict[str, Any]:
    """One small instance of every public operator family, by name."""
    from ..operators import Identity, MatrixOperator, RealToComplex
    from ..operators.ct import FanBeamRadon, ParallelBeamRadon
    from ..operators.mri import MultiCoilMRI, birdcage_maps
    from ..operators.phase_retrieval import (
        CodedDiffraction,
        FourierPhaseRetrieval,
        OversampledFourier,
    )

    maps = birdcage_maps((8, 8), 2, dtype=torch.complex64)
    return {
        "MatrixOperator": MatrixOperator(torch.randn(5, 8, generator=_gen()), in_shape=(2, 4)),
        "Identity": Identity((1, 4, 4)),
        "RealToComplex": RealToComplex(),
        "ParallelBeamRadon": ParallelBeamRadon(8, 4),
        "FanBeamRadon": FanBeamRadon(8, 4, 40.0, 20.0, 12, 1.5),
        "MultiCoilMRI": MultiCoilMRI(maps),
        "MultiCoilMRI@RealToComplex": MultiCoilMRI(maps) @ RealToComplex(),
        "OversampledFourier": OversampledFourier((4, 4), (8, 8)),
        "FourierPhaseRetrieval": FourierPhaseRetrieval((4, 4), oversampling=2.0),
        "CodedDiffraction": CodedDiffraction(4, n_masks=2),
    }


def operator_input_is_valid(name: str, op: Any, x: torch.Tensor) -> bool:
    """Whether ``op`` (named ``name`` in :func:`public_operators`) must accept ``x``."""
    dtypes = (torch.float32, torch.float64) if name in REAL_ONLY else (
        torch.float32, torch.float64, torch.complex64)
    if x.ndim < 1 or x.shape[0] == 0 or x.dtype not in dtypes:
        return False
    if op.in_shape is None:
        return x.ndim >= 4 and (name != "RealToComplex" or x.shape[1] % 2 == 0)
    return tuple(x.shape[1:]) == tuple(op.in_shape)


def sweep_inputs(in_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """Named input shapes around ``in_shape``: valid, empty batch, no batch axis, an extra
    axis, each dimension off by one, and a scalar."""
    shapes = [("valid", (2, *in_shape)), ("empty batch", (0, *in_shape)),
              ("no batch axis", tuple(in_shape)), ("extra axis", (2, 1, *in_shape)),
              ("scalar", ())]
    for i in range(len(in_shape)):
        dims = list(in_shape)
        dims[i] += 1
        shapes.append((f"dim {i + 1} + 1", (2, *dims)))
    return shapes


def operator_sweep_cases() -> list[Case]:
    """Every public operator on every :func:`sweep_inputs` shape in five dtypes (and NumPy)."""
    cases = []
    ops = public_operators()
    dtypes = (torch.float32, torch.float64, torch.complex64, torch.int64, torch.bool)
    for name, op in ops.items():
        for label, shape in sweep_inputs(op.in_shape or (2, 4, 4)):
            for dtype in dtypes:
                x = torch.zeros(shape, dtype=dtype)
                title = f"{name} on {label} {tuple(shape)} {str(dtype)[6:]}"
                if operator_input_is_valid(name, op, x):
                    cases.append(Case(title, lambda t, o=op, v=x: o(v), check=lambda r, t, o=op,
                                      v=x: r.shape[0] == v.shape[0] and (
                                          o.out_shape is None
                                          or tuple(r.shape[1:]) == tuple(o.out_shape))))
                else:
                    cases.append(Case(title, lambda t, o=op, v=x: o(v), ValueError, r"^x: "))
        cases.append(Case(f"{name} on a NumPy array",
                          lambda t, o=op: o(np.zeros((2, *(o.in_shape or (2, 4, 4))))),
                          ValueError, r"^x: expected a torch.Tensor"))
    return cases
