"""pipeline.notebooks: every notebook runs headless on a (tiny) dataset; failures name notebook and cell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _dataset_factory import make_dataset

from pipeline.notebooks import NOTEBOOKS_DIR, PROJECT_ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run([sys.executable, "-m", "pipeline.notebooks", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _errors(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{out.get('ename')}: {out.get('evalue')}")
    return found


def test_committed_notebooks_have_no_outputs():
    paths = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert [p.name for p in paths][:2] == ["01_quickstart.ipynb", "02_analysis.ipynb"]
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, p.name


@pytest.mark.parametrize("articles", [None, []], ids=["sample", "empty"])
def test_notebooks_run_on_synthetic_dataset(tmp_path, articles):
    data = make_dataset(tmp_path / "out", articles=articles)
    res = _run(["--data", str(data)])
    assert res.returncode == 0, res.stderr[-3000:]
    for src in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        executed = data / "notebooks" / src.name
        assert executed.exists(), src.name
        assert _errors(executed) == [], src.name
        nb = nbformat.read(executed, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), src.name


def test_failing_cell_is_reported(tmp_path):
    data = make_dataset(tmp_path / "out")
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nassert os.environ['DATA'].endswith('out')"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom from the test')"),
    ])
    nbformat.write(nb, nb_dir / "broken.ipynb")
    res = _run(["--data", str(data), "--notebooks", str(nb_dir)])
    assert res.returncode == 1
    assert "broken.ipynb" in res.stderr and "code cell 3" in res.stderr and "boom from the test" in res.stderr
    assert (data / "notebooks" / "broken.ipynb").exists()


def test_missing_dataset_is_a_clear_error(tmp_path):
    res = _run(["--data", str(tmp_path / "nothing")])
    assert res.returncode == 2 and "make dataset" in res.stderr
