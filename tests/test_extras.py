"""Optional dependencies fail with an error naming the extra to install (diffinv.extras)."""

from __future__ import annotations

import pytest

from diffinv.extras import EXTRAS, require


def test_require_returns_the_module():
    assert require("math").sqrt(4.0) == 2.0


def test_a_missing_package_names_its_extra():
    with pytest.raises(ImportError, match=r"pip install 'diffinv\[vlbi\]'.*") as info:
        require("diffinv_no_such_package.io", "vlbi", "reading UVFITS files")
    assert "reading UVFITS files" in str(info.value)
    assert "diffinv_no_such_package" in str(info.value)


def test_every_extra_in_the_table_is_declared_in_pyproject():
    from pathlib import Path

    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from a source checkout")
    declared = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS.values()) <= set(declared)
    assert {"mri", "ct", "vlbi", "plots", "data", "all"} <= set(declared)
