"""Run every notebooks/*.ipynb headless against a built dataset.

    python -m pipeline.notebooks --data outputs       # what `make notebooks DATA=outputs` runs

Executed copies go to <data>/notebooks/. The exit status is non-zero when any cell fails;
the message names the notebook and the cell.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


class NotebookError(Exception):
    """A cell of a notebook failed."""


def _kernel_manager():
    """A KernelManager for this interpreter's ipykernel, whatever kernelspecs the user has installed."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class _ThisPython(KernelSpecManager):
        # A user-level "python3" spec may point at another Python without our deps: ignore it.
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name=f"Python 3 ({sys.executable})",
                language="python",
                name="python3",
            )

    return KernelManager(kernel_name="python3", kernel_spec_manager=_ThisPython())


def _first_error(nb) -> tuple[int, str, str] | None:
    """(code cell number, source head, error text) of the first cell with an error output."""
    code_no = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_no += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                head = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return code_no, head, f"{output.get('ename')}: {output.get('evalue')}"
    return None


def run_notebook(path: Path, data: Path, out_dir: Path, timeout: int = 600) -> Path:
    """Execute one notebook with DATA=data; write the executed copy to out_dir. Raises NotebookError."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        km=_kernel_manager(),
        timeout=timeout,
        # The kernel starts in the notebook's folder, as in Jupyter; DATA is absolute anyway.
        resources={"metadata": {"path": str(path.parent)}},
    )
    error: str | None = None
    try:
        client.execute()
    except CellExecutionError:
        error = "cell raised"
    except (CellTimeoutError, DeadKernelError, RuntimeError, OSError) as exc:  # incl. kernel start failures
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    nbformat.write(nb, target)  # also on failure: the partial copy shows where it broke
    found = _first_error(nb)
    if found or error:
        where = f"code cell {found[0]} (`{found[1][:70]}`): {found[2]}" if found else error
        raise NotebookError(f"{path.name}: {where}; executed copy: {target}")
    return target


def run_all(data: str | Path, notebooks: str | Path = NOTEBOOKS_DIR, timeout: int = 600) -> list[str]:
    """Run every *.ipynb in `notebooks` (sorted); return the error messages (empty when all passed)."""
    data = Path(data).absolute()  # not resolve(): keep the user's path (outputs may be a symlink)
    nb_dir = Path(notebooks)
    paths = sorted(p for p in nb_dir.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        return [f"no notebooks in {nb_dir}"]
    # The kernel inherits this environment: the dataset path, a headless matplotlib and the project
    # on sys.path (the project need not be pip-installed).
    os.environ["DATA"] = str(data)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    errors = []
    for path in paths:
        try:
            target = run_notebook(path, data, data / "notebooks", timeout)
            print(f"ok    {path.name} -> {target}", flush=True)
        except NotebookError as exc:
            print(f"FAIL  {exc}", file=sys.stderr, flush=True)
            errors.append(str(exc))
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("DATA", "outputs"),
                        help="dataset folder built by `make dataset` (default: $DATA or outputs)")
    parser.add_argument("--notebooks", default=str(NOTEBOOKS_DIR), help="folder of notebooks to run")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "articles").is_dir():
        print(f"error: no dataset in {args.data} (no articles/ folder); run `make dataset` first",
              file=sys.stderr)
        return 2
    errors = run_all(args.data, args.notebooks, args.timeout)
    if errors:
        print(f"{len(errors)} notebook(s) failed:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
