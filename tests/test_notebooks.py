"""Every notebook in notebooks/ runs top to bottom and is committed without outputs.

Notebooks hold no logic (STYLE.md), so executing them is a test of the public API they teach.
Each runs in a fresh python3 kernel with a temporary working directory, so nothing is written
into the repository, and with the Agg backend, so no display is needed.

Executing a notebook takes up to a minute or two, so all but the first (``QUICK``, a few
seconds) are marked slow: the default run executes one, CI (slow tests included) all of
them. The docs build in .ci/run does not execute them: this is where they run.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
QUICK = "01_journey_basics.ipynb"  # executed in the default run too


def test_notebooks_found() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    assert QUICK in [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", [
    pytest.param(p, id=p.name, marks=() if p.name == QUICK else pytest.mark.slow)
    for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel inherits this environment; ipykernel keeps a backend that is already set
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    assert not errors
