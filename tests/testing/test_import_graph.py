"""The package's one-way layering, checked statically (diffinv.testing.import_graph)."""

from __future__ import annotations

import shutil
from pathlib import Path

import diffinv
from diffinv.testing.import_graph import layer_violations

PACKAGE = Path(diffinv.__file__).resolve().parent


def test_the_package_has_no_back_edges_and_no_private_imports():
    found = layer_violations(PACKAGE)
    assert not found, "\n".join(map(str, found))


def test_a_deliberate_back_edge_and_private_import_are_caught(tmp_path):
    copy = tmp_path / "diffinv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.pt", "*.png", "__pycache__"))
    target = copy / "operators" / "noise.py"
    target.write_text(target.read_text() + "\nfrom ..solvers.kernels import reverse_kernel\n")
    prior = copy / "priors" / "gaussian.py"
    prior.write_text(prior.read_text() + "\nfrom diffinv.solvers import dps\n")
    private = copy / "datasets" / "patches.py"
    private.write_text(private.read_text() + "\nfrom ..posterior import _FORMAT\n")
    found = {(v.module, v.rule) for v in layer_violations(copy)}
    assert ("diffinv.operators.noise", "operators -> solvers") in found
    assert ("diffinv.priors.gaussian", "priors -> solvers") in found
    assert ("diffinv.datasets.patches", "private name") in found
    assert len(found) == 3
