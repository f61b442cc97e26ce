"""The catalogue of hostile inputs and faults (see :mod:`diffinv.testing.hostile`).

:func:`all_cases` returns every case; each builds its own small inputs (a few hundred pixels),
so the whole catalogue runs in seconds.  Cases are grouped: operators, noise models and
problems, sampling, files (every reader on empty, truncated, damaged and wrong-kind files)
and output directories (data loss).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .hostile import Case
from .hostile_files import file_cases
from .hostile_sweep import operator_sweep_cases

__all__ = ["all_cases", "small_gaussian_problem"]

_G = 0  # seed of every generated input


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(_G)


def small_gaussian_problem(sigma: float = 0.1):
    """A 3x3 Gaussian prior and a 4x9 linear problem with data drawn from it (float64)."""
    from ..operators import GaussianNoise, InverseProblem, MatrixOperator
    from ..priors import GaussianPrior

    g = _gen()
    prior = GaussianPrior(torch.zeros(1, 3, 3), torch.eye(9, dtype=torch.float64))
    op = MatrixOperator(torch.randn(4, 9, dtype=torch.float64, generator=g), in_shape=(1, 3, 3))
    x = prior.sample(1, generator=g)
    noise = GaussianNoise(sigma)
    return InverseProblem(op, noise, noise.sample(op(x), generator=g)), prior


def _mri(mask: torch.Tensor | None = None):
    from ..operators.mri import MultiCoilMRI, birdcage_maps

    maps = birdcage_maps((8, 8), 2, dtype=torch.complex64)
    return MultiCoilMRI(maps, mask if mask is not None else torch.ones(8, 8, dtype=torch.bool))


def _matrix(m: int = 3, n: int = 4) -> Any:
    from ..operators import MatrixOperator

    return MatrixOperator(torch.randn(m, n, generator=_gen()))


# -- operators ---------------------------------------------------------------------------------
def _broadcast_diagonal(t: Path) -> list[tuple[int, ...]]:
    """A Diagonal with batched (broadcast) weights keeps working through H, *, + and @."""
    from ..operators import Diagonal

    d = Diagonal(torch.rand(1, 2, 3, 3, generator=_gen()))
    x = torch.rand(4, 2, 3, 3, generator=_gen())
    return [tuple(op(x).shape) for op in (d, d.H, 2 * d, d + d, d @ d)]


def _operator_cases() -> list[Case]:
    from ..operators import InverseProblem, MatrixOperator, RealToComplex
    from ..operators.ct import ParallelBeamRadon

    nan = torch.ones(3, 4)
    nan[1, 2] = float("nan")
    return [
        Case("RealToComplex without batch axis",
             lambda t: RealToComplex()(torch.randn(2, 32, 32)), ValueError, r"^x: .*batch"),
        Case("MultiCoilMRI @ RealToComplex keeps the input shape",
             lambda t: (_mri() @ RealToComplex()).in_shape,
             check=lambda r, t: r == (2, 8, 8)),
        Case("composition shape check reaches the problem",
             lambda t: InverseProblem(_mri() @ RealToComplex(), _gaussian(0.1),
                                      torch.zeros(1, 2, 8, 8, dtype=torch.complex64)).image_shape,
             check=lambda r, t: r == (2, 8, 8)),
        Case("composing operators of mismatched shapes",
             lambda t: _matrix(3, 4) @ _matrix(5, 6), ValueError, r"^other: .*compose"),
        Case("MatrixOperator input of the wrong size",
             lambda t: _matrix()(torch.randn(2, 5)), ValueError, r"^x: expected shape"),
        Case("MatrixOperator adjoint of the wrong size",
             lambda t: _matrix().adjoint(torch.randn(2, 5)), ValueError, r"^y: expected shape"),
        Case("MatrixOperator with a NaN matrix", lambda t: MatrixOperator(nan), ValueError,
             r"^matrix: .*NaN"),
        Case("MatrixOperator with a NumPy matrix", lambda t: MatrixOperator(np.ones((3, 4))),
             ValueError, r"^matrix: expected"),
        Case("MatrixOperator with an empty matrix",
             lambda t: MatrixOperator(torch.zeros(0, 4)), ValueError, r"^matrix: .*non-empty"),
        Case("NumPy input to an operator", lambda t: _matrix()(np.ones((2, 4))), ValueError,
             r"^x: expected a torch.Tensor"),
        Case("empty batch to MatrixOperator", lambda t: _matrix()(torch.zeros(0, 4)), ValueError,
             r"^x: expected a non-empty batch"),
        Case("empty batch to ParallelBeamRadon",
             lambda t: ParallelBeamRadon(8, 4)(torch.zeros(0, 1, 8, 8)), ValueError,
             r"^x: expected a non-empty batch"),
        Case("image without batch axis to ParallelBeamRadon",
             lambda t: ParallelBeamRadon(8, 4)(torch.zeros(1, 8, 8)), ValueError,
             r"^x: expected shape .*batch axis"),
        Case("Diagonal with broadcast weights in H, *, + and @", _broadcast_diagonal,
             check=lambda r, t: r == [(4, 2, 3, 3)] * 5),
        Case("all-zero MRI mask", lambda t: _mri(torch.zeros(8, 8, dtype=torch.bool)),
             ValueError, r"^mask: .*all zero"),
    ]


# -- noise models and problems -------------------------------------------------------------
def _gaussian(sigma: float, mask: Any = None) -> Any:
    from ..operators import GaussianNoise

    return GaussianNoise(sigma, mask=mask)


def _complex_y_real_operator(t: Path) -> Any:
    from ..operators import InverseProblem

    y = torch.randn(1, 3, dtype=torch.complex64, generator=_gen())
    problem = InverseProblem(_matrix(), _gaussian(1.0), y)
    return problem.reduced_chi2(torch.zeros(1, 4))


def _negative_counts(kind: str) -> Any:
    from ..operators import InverseProblem, PoissonNoise
    from ..operators.ct import ParallelBeamRadon
    from ..operators.ct.noise import TransmissionPoisson

    if kind == "poisson":
        return InverseProblem(_matrix(), PoissonNoise(1.0), torch.tensor([[3.0, -1.0, 2.0]]))
    op = ParallelBeamRadon(8, 4)
    y = torch.full((1, *op.out_shape), 100.0)
    y[0, 0, 0, 0] = -5.0
    return InverseProblem(op, TransmissionPoisson(1e3), y)


def _non_hermitian(t: Path) -> Any:
    from ..operators.mri import CoilNoise

    return CoilNoise(torch.tensor([[2.0, 0.5], [-0.5, 2.0]], dtype=torch.complex64))


def _noise_cases() -> list[Case]:
    from ..operators import InverseProblem

    return [
        Case("complex y with a real operator", _complex_y_real_operator, ValueError,
             r"^y: complex data"),
        Case("negative Poisson counts", lambda t: _negative_counts("poisson"), ValueError,
             r"^y: .*non-negative"),
        Case("negative transmission counts", lambda t: _negative_counts("transmission"),
             ValueError, r"^y: .*non-negative"),
        Case("non-Hermitian coil covariance", _non_hermitian, ValueError,
             r"^covariance: .*Hermitian"),
        Case("all-False GaussianNoise mask",
             lambda t: _gaussian(0.1, torch.zeros(3, dtype=torch.bool)), ValueError, r"^mask: "),
        Case("zero GaussianNoise sigma", lambda t: _gaussian(0.0), ValueError, r"^sigma: "),
        Case("NaN data", lambda t: InverseProblem(_matrix(), _gaussian(1.0),
                                                  torch.tensor([[1.0, float("nan"), 0.0]])),
             ValueError, r"^y: .*NaN"),
        Case("two measurements for one image batch",
             lambda t: InverseProblem(_matrix(), _gaussian(1.0), torch.zeros(2, 3)),
             ValueError, r"^y: expected one measurement"),
    ]


# -- sampling ----------------------------------------------------------------------------------
def _sample(problem: Any, prior: Any, **kw: Any) -> Any:
    from .. import sample

    opts = {"n_samples": 4, "steps": 20, "seed": 0, "dtype": torch.float64, **kw}
    return sample(problem, prior, **opts)


def _warned(post: Any) -> bool:
    return bool(post.diagnostics.get("warnings"))


def _fits_or_warns(post: Any) -> bool:
    chi2 = post.diagnostics.get("reduced_chi2_mean")
    good = isinstance(chi2, float) and chi2 <= 10.0
    return good or _warned(post)


def _tiny_sigma(t: Path) -> Any:
    problem, prior = small_gaussian_problem(1e-12)
    return _sample(problem, prior, solver="dps")


def _huge_zeta(t: Path) -> Any:
    problem, prior = small_gaussian_problem(0.1)
    return _sample(problem, prior, solver="dps", zeta=1e6)


def _ct_dps(t: Path) -> Any:
    from ..demos import get_demo

    demo = get_demo("ct-sparse-view")(seed=0)  # the shipped learned prior, as the CLI uses
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _sample(demo.problem, demo.prior, solver="dps", steps=50, n_samples=2,
                       dtype=torch.float32)


def _negative_mean(t: Path) -> Any:
    problem, prior = small_gaussian_problem(0.1)
    shifted = type(prior)(prior.mean.reshape(1, 3, 3) - 5.0, prior.cov)
    return _sample(problem, shifted, solver="daps", physical_range=(0.0, float("inf")))


def _mri_prior_mismatch(t: Path) -> Any:
    """A composed MRI problem and a prior of the wrong image size: refused before sampling."""
    from ..operators import InverseProblem, RealToComplex
    from ..priors import GaussianPrior

    problem = InverseProblem(_mri() @ RealToComplex(), _gaussian(0.1),
                             torch.zeros(1, 2, 8, 8, dtype=torch.complex64))
    prior = GaussianPrior(torch.zeros(2, 4, 4), torch.eye(32, dtype=torch.float64))
    return _sample(problem, prior, solver="daps")


def _huge_ct(t: Path) -> Any:
    """A CT problem whose sparse projector matrices (~0.9 TB) cannot fit: refused at once."""
    from .. import sample
    from ..operators import InverseProblem
    from ..operators.ct import ParallelBeamRadon

    op = ParallelBeamRadon(4000, 800, backend="sparse")
    problem = InverseProblem(op, _gaussian(1.0), torch.zeros(1, *op.out_shape))
    return sample(problem, lambda x, s: torch.zeros_like(x), "dps", n_samples=1, steps=2)


def _sampling_cases() -> list[Case]:
    def prob():
        return small_gaussian_problem()

    return [
        Case("GaussianNoise(1e-12): misfit must be reported", _tiny_sigma, check=lambda r, t:
             _fits_or_warns(r)),
        Case("dps zeta=1e6: misfit must be reported", _huge_zeta,
             check=lambda r, t: _fits_or_warns(r)),
        Case("dps default step on ct-sparse-view does not diverge", _ct_dps,
             check=lambda r, t: isinstance(r.diagnostics["reduced_chi2_mean"], float)
             and r.diagnostics["reduced_chi2_mean"] < 1e6),  # 3.7e15 when it diverged
        Case("values outside the physical range are reported", _negative_mean,
             check=lambda r, t: any(w.startswith("range:") for w in r.diagnostics["warnings"])),
        Case("MRI problem with a prior of the wrong image size", _mri_prior_mismatch,
             ValueError, r"^prior: its event_shape \(2, 4, 4\) does not match"),
        Case("steps=0", lambda t: _sample(*prob(), steps=0), ValueError, r"^steps: "),
        Case("huge seed", lambda t: _sample(*prob(), seed=10**30), ValueError, r"^seed: "),
        Case("negative seed", lambda t: _sample(*prob(), seed=-1), ValueError, r"^seed: "),
        Case("request that cannot fit in memory", lambda t: _sample(*prob(), n_samples=10**12),
             ValueError, r"^n_samples: .*GiB.*GiB"),
        Case("operator caches that cannot fit in memory", _huge_ct, ValueError,
             r"^n_samples: .*operator caches [0-9.e+]+ GiB.*GiB of memory"),
        Case("unknown solver option", lambda t: _sample(*prob(), bogus=1), ValueError,
             r"^bogus: unknown option"),
    ]


# -- output directories (data loss) ------------------------------------------------------------
def _reuse_refused(t: Path) -> bool:
    from ..outdir import prepare_output_dir

    (t / "posterior.h5").write_text("previous result")
    try:
        prepare_output_dir(t, known=("posterior.h5",)).close()
    except ValueError as err:
        return "--overwrite" in str(err) and (t / "posterior.h5").read_text() == "previous result"
    return False


def _overwrite_replaces(t: Path) -> bool:
    from ..outdir import prepare_output_dir

    for name in ("posterior.h5", "truth.png", "notes.txt"):
        (t / name).write_text("previous")
    with prepare_output_dir(t, overwrite=True, known=("posterior.h5", "truth.png")) as out:
        survived = (t / "truth.png").exists()  # kept until the new results are written
        (t / "posterior.h5").write_text("new")
        out.finish(["posterior.h5"])
    return survived and not (t / "truth.png").exists() and (t / "notes.txt").exists() and (
        t / "posterior.h5").read_text() == "new"


def _second_lock(t: Path) -> Any:
    from ..outdir import prepare_output_dir

    with prepare_output_dir(t / "out"):
        prepare_output_dir(t / "out").close()


def _stale_tmp(t: Path) -> bool:
    from ..outdir import prepare_output_dir

    (t / ".posterior.h5.abc123.h5.tmp").write_text("partial")
    prepare_output_dir(t).close()
    return not any(p.name.endswith(".tmp") for p in t.iterdir())


def _umask_mode(t: Path) -> bool:
    from ..io import atomic_write, current_umask

    path = atomic_write(t / "f.txt", lambda tmp: Path(tmp).write_text("x"))
    return (os.stat(path).st_mode & 0o777) == (0o666 & ~current_umask())


def _under_file(t: Path) -> Any:
    from ..outdir import prepare_output_dir

    (t / "afile").write_text("x")
    return prepare_output_dir(t / "afile" / "out")


def _file_in_place(t: Path) -> Any:
    from ..outdir import prepare_output_dir

    (t / "out").write_text("x")
    return prepare_output_dir(t / "out")


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from diffinv.io import atomic_write
def write(tmp):
    Path(tmp).write_text("partial new content")
    Path(sys.argv[2]).write_text("writing")
    time.sleep(60)
atomic_write(sys.argv[1], write)
"""


def _killed_writer(t: Path) -> bool:
    """SIGKILL a process in the middle of an atomic write; the previous file must survive
    and the next prepare_output_dir must remove the partial temporary file."""
    import signal
    import subprocess
    import sys
    import time

    from ..outdir import prepare_output_dir

    target, flag = t / "posterior.h5", t / "flag"
    target.write_text("previous result")
    src = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target), str(flag)],
                            env=env)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    flag.unlink(missing_ok=True)
    kept = target.read_text() == "previous result"
    prepare_output_dir(t, overwrite=True).close()
    return kept and not any(p.name.endswith(".tmp") for p in t.iterdir())


def _outdir_cases() -> list[Case]:
    from ..outdir import prepare_output_dir

    return [
        Case("reused --out without --overwrite", _reuse_refused, check=lambda r, t: r,
             data=True),
        Case("--overwrite leaves no stale result", _overwrite_replaces, check=lambda r, t: r,
             data=True),
        Case("two runs on one --out", _second_lock, ValueError, r"^--out: .*in use", data=True),
        Case("stale .tmp files of a killed run", _stale_tmp, check=lambda r, t: r, data=True),
        Case("atomic writes honour the umask", _umask_mode, check=lambda r, t: r, data=True),
        Case("--out ''", lambda t: prepare_output_dir(""), ValueError, r"^--out: .*empty",
             data=True),
        Case("--out under a file", _under_file, ValueError, r"^--out: .*afile", data=True),
        Case("--out is a file", _file_in_place, ValueError, r"^--out: .*not a directory",
             data=True),
        Case("SIGKILL during an atomic write", _killed_writer, check=lambda r, t: r, data=True),
    ]


def all_cases() -> list[Case]:
    """Every hostile case (names are unique)."""
    cases = (_operator_cases() + _noise_cases() + _sampling_cases() + file_cases()
             + _outdir_cases() + operator_sweep_cases())
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases

