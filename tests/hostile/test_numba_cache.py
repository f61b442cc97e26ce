"""A read-only install: numba cannot cache beside the source nor in the home directory.

The package is imported from a zip file (nothing can be written beside the source) with
``HOME`` and ``XDG_CACHE_HOME`` pointing into ``/proc`` (no cache folder can be created, even
as root); the CT projector's numba kernels must still compile and run, uncached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("numba")

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = """
import os
import torch
from diffinv.operators.ct import ParallelBeamRadon, joseph_numba
from diffinv.numba_cache import cache_dir
op = ParallelBeamRadon(8, 4, backend="numba")
y = op(torch.ones(1, 1, 8, 8, dtype=torch.float64))
x = op.adjoint(y)
print(tuple(y.shape), tuple(x.shape), cache_dir(os.path.dirname(joseph_numba.__file__)))
"""


def test_numba_kernels_run_from_a_read_only_install(tmp_path):
    archive = tmp_path / "diffinv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (SRC / "diffinv").rglob("*.py"):
            zf.write(path, path.relative_to(SRC))
    env = {**os.environ, "PYTHONPATH": str(archive), "HOME": "/proc/diffinv-no-home",
           "XDG_CACHE_HOME": "/proc/diffinv-no-cache", "OMP_NUM_THREADS": "1"}
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "(1, 1, 4, 12) (1, 1, 8, 8) None"
