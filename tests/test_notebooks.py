"""The worked examples in ``notebooks/`` run top to bottom without error.

Each notebook checks its own results with ``assert`` cells (e.g. SMC's posterior mode
weights against the exact ones), so an example that silently went wrong fails here.  The
notebooks are stored with their outputs stripped (no stale figures in git): clear them
before committing, e.g. ``jupyter nbconvert --clear-output --inplace notebooks/NAME.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors


def unstripped_cells(nb) -> list[str]:
    """Ids (or indices) of the code cells of ``nb`` that carry outputs or an execution count."""
    return [str(cell.get("id", k)) for k, cell in enumerate(nb.cells)
            if cell.cell_type == "code"
            and (cell.get("outputs") or cell.get("execution_count") is not None)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    dirty = unstripped_cells(nb)
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts; strip them with "
        f"jupyter nbconvert --clear-output --inplace {path.name}"
    )


def test_stripped_check_catches_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    assert unstripped_cells(nb) == []
    nb.cells[0].execution_count = 1
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"},
                                                  execution_count=1)]
    assert unstripped_cells(nb) == [nb.cells[0].id]
    nb.cells[0].outputs = []
    assert unstripped_cells(nb) == [nb.cells[0].id]  # a count alone also marks a run
