"""pipeline.figures: the card's figures drawn in a forked process are the ones drawn in line,
and a failure there fails the build instead of leaving a card without figures.

The fork happens only in a process without other threads, and earlier tests (Dask clients) leave
threads behind in the test process: the forking cases run in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from pipeline.figures import FIGURES, FigureJob, write_figures

REPO = Path(__file__).resolve().parent.parent
STATS = {
    "n_articles": 5,
    "per_day": {"2020-10-01": 3, "2020-10-03": 2},
    "dated_by": {"published_at": 5, "feed_date": 0, "undated": 0},
    "source_order": ["(臺)中央社CNA", "RFI"],
    "per_source_data": {"(臺)中央社CNA": 4, "RFI": 1},
    "per_section": {"aopl": 3, "acn": 1, None: 1},
}
FILES = [*FIGURES.values(), "figures/counts.json"]


def _files(out: Path) -> dict[str, bytes]:
    return {rel: (out / rel).read_bytes() for rel in FILES}


def _run_fresh(code: str, tmp_path: Path) -> None:
    """Run `code` (with STATS and tmp defined) in a new interpreter; its asserts must hold."""
    prelude = f"import sys\nfrom pathlib import Path\nSTATS = {STATS!r}\ntmp = Path({str(tmp_path)!r})\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_forked_figures_equal_in_line_ones(tmp_path: Path) -> None:
    write_figures(tmp_path / "inline", STATS)
    _run_fresh("""
        from pipeline.figures import FigureJob
        job = FigureJob()
        assert job.process is not None, "no other thread here: the figures must be drawn in a fork"
        job.draw(tmp / "forked", {**STATS, "not drawn": 1})
        job.wait()
        assert job.process is None
    """, tmp_path)
    assert _files(tmp_path / "forked") == _files(tmp_path / "inline")
    assert (tmp_path / "forked" / FIGURES["per_day"]).read_bytes().startswith(b"\x89PNG")


def test_a_failing_drawing_fails_the_build(tmp_path: Path) -> None:
    _run_fresh("""
        from pipeline.errors import BuildError
        from pipeline.figures import FigureJob
        job = FigureJob()
        assert job.process is not None
        job.draw(tmp / "out", {**STATS, "per_day": {"not a day": 1}})  # numpy cannot read the day
        try:
            job.wait()
        except BuildError as exc:
            assert "figures failed" in str(exc), exc
        else:
            raise AssertionError("a failed drawing passed unnoticed")
    """, tmp_path)


def test_close_ends_an_unused_process(tmp_path: Path) -> None:
    _run_fresh("""
        from pipeline.errors import BuildError
        from pipeline.figures import FigureJob
        job = FigureJob()
        process = job.process
        assert process is not None
        job.close()
        assert not process.is_alive()
        try:
            job.wait()
        except BuildError as exc:
            assert "before draw" in str(exc)
        else:
            raise AssertionError("wait() without draw() passed")
    """, tmp_path)


def test_with_other_threads_running_it_draws_in_line(tmp_path: Path) -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        job = FigureJob()
        assert job.process is None  # forking beside a live thread is not safe: no process
        job.draw(tmp_path / "out", STATS)
        job.wait()
    finally:
        stop.set()
        other.join()
    write_figures(tmp_path / "reference", STATS)
    assert _files(tmp_path / "out") == _files(tmp_path / "reference")


def test_build_uses_and_ends_the_callers_figure_job(tmp_path: Path) -> None:
    """The CLI starts the figure process before importing the build: build() draws with that
    process and ends it; with the card off, it ends it unused."""
    demo = REPO / "pipeline" / "demo_posts"
    _run_fresh(f"""
        from pipeline.figures import FigureJob
        job = FigureJob()
        process = job.process
        assert process is not None
        from pipeline.build import BuildOptions, build
        build(BuildOptions(input={str(demo)!r}, output=str(tmp / "card"), workers=1), job)
        assert job.process is None and process.exitcode == 0  # it drew the card's figures
        assert (tmp / "card" / "figures" / "articles_per_day.png").read_bytes().startswith(b"\\x89PNG")
        job = FigureJob()
        process = job.process
        build(BuildOptions(input={str(demo)!r}, output=str(tmp / "nocard"), workers=1, write_card=False), job)
        assert not process.is_alive() and not (tmp / "nocard" / "figures").exists()
    """, tmp_path)
