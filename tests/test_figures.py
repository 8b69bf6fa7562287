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
        job.draw(tmp / "out", {**STATS, "per_day": {"not a day": 1}})  # not an ISO day
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


# -- what the figures show ------------------------------------------------------------------


def test_count_ticks_are_round_and_cover_the_top() -> None:
    from pipeline.figures import count_ticks

    assert count_ticks(0) == [0, 1] and count_ticks(1) == [0, 1]
    assert count_ticks(7) == [0, 2, 4, 6, 8]
    assert count_ticks(142) == [0, 50, 100, 150]
    assert count_ticks(17_358) == [0, 5_000, 10_000, 15_000, 20_000]
    for top in range(0, 3000, 7):
        ticks = count_ticks(top)
        step = ticks[1]
        assert ticks[-1] >= top and len(ticks) <= 7 and ticks == list(range(0, ticks[-1] + 1, step))
        assert int(str(step).rstrip("0") or 0) in (1, 2, 5)


def test_date_ticks_by_span() -> None:
    from datetime import date

    from pipeline.figures import date_ticks

    days = date_ticks(date(2020, 10, 1), date(2020, 10, 5))
    assert [label for _, label in days] == ["2020-10-01", "2020-10-02", "2020-10-03", "2020-10-04", "2020-10-05"]
    months = date_ticks(date(2019, 8, 20), date(2021, 4, 3))  # the corpus's span
    assert [label for _, label in months] == ["2019-10", "2020-01", "2020-04", "2020-07", "2020-10",
                                               "2021-01", "2021-04"]
    years = date_ticks(date(1995, 1, 1), date(2020, 6, 1))
    assert len(years) <= 8 and all(label.isdigit() and d.month == 1 and d.day == 1 for d, label in years)
    for first, last in ((date(2020, 1, 31), date(2020, 3, 2)), (date(2020, 2, 1), date(2020, 2, 1))):
        ticks = date_ticks(first, last)
        assert ticks and all(first <= d <= last for d, _ in ticks) and len(ticks) <= 8


def _bar_runs(path: Path) -> list[tuple[int, int, int]]:
    """(y, first x, last x) of the bar-coloured pixels on each image row that has any."""
    from PIL import Image

    from pipeline.figures import BAR

    image = Image.open(path).convert("RGB")
    width, height = image.size
    pixels = image.load()
    runs = []
    for y in range(height):
        xs = [x for x in range(width) if pixels[x, y] == BAR]
        if xs:
            runs.append((y, xs[0], xs[-1]))
    return runs


def test_bars_are_as_long_as_their_counts(tmp_path: Path) -> None:
    from pipeline.figures import _barh

    _barh([("first", 400), ("second", 100)], "t", tmp_path / "bars.png")
    runs = _bar_runs(tmp_path / "bars.png")
    top_bar = [r for r in runs if r[0] < runs[0][0] + 16]
    bottom_bar = [r for r in runs if r[0] > runs[-1][0] - 16]
    assert top_bar and bottom_bar and top_bar[0][0] < bottom_bar[0][0]  # the first item on top
    left = top_bar[0][1]
    assert all(r[1] == left for r in runs)  # every bar starts at the axis
    long, short = top_bar[0][2] - left, bottom_bar[0][2] - left
    assert abs(long / short - 4) < 0.1


def test_days_without_articles_have_no_column(tmp_path: Path) -> None:
    from PIL import Image

    from pipeline.figures import BAR, _per_day_figure

    per_day = {"2020-10-01": 10, "2020-10-02": 5, "2020-10-04": 10}  # nothing on the 3rd
    _per_day_figure(per_day, {"undated": 0}, tmp_path / "days.png")
    image = Image.open(tmp_path / "days.png").convert("RGB")
    pixels = image.load()
    height = {x: sum(pixels[x, y] == BAR for y in range(image.height)) for x in range(image.width)}
    columns = [x for x, h in height.items() if h]
    # three days' columns: the 1st and 2nd side by side, a gap (the 3rd), then the 4th
    runs = [[columns[0]]]
    for x in columns[1:]:
        if x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    assert len(runs) == 2
    first_two, fourth = runs
    assert len(fourth) * 1.9 < len(first_two) < len(fourth) * 2.1  # two days wide, one day wide
    tall = max(height.values())
    half_height = [height[x] for x in first_two if height[x] < tall * 0.75]
    assert half_height and all(abs(h - tall / 2) <= 2 for h in half_height)  # 5 articles: half of 10
    assert all(abs(height[x] - tall) <= 1 for x in fourth)


def _inked_rows(path: Path) -> list[int]:
    """Image rows holding any pixel that is not white."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    pixels = image.load()
    return [y for y in range(image.height) if any(pixels[x, y] != (255, 255, 255) for x in range(image.width))]


def test_empty_figures_say_so(tmp_path: Path) -> None:
    empty = {**STATS, "n_articles": 0, "per_day": {}, "per_source_data": {}, "per_section": {}, "source_order": []}
    write_figures(tmp_path, empty)
    for rel in FIGURES.values():
        assert (tmp_path / rel).read_bytes().startswith(b"\x89PNG") and not _bar_runs(tmp_path / rel)
        # the title and, below it, the message that there is nothing to show
        assert max(_inked_rows(tmp_path / rel)) > 40


def test_labels_stay_inside_the_image(tmp_path: Path) -> None:
    """The first day's tick label is centred on the plot's left edge: it is moved in, not cut."""
    from PIL import Image

    from pipeline.figures import _per_day_figure

    _per_day_figure({"2020-01-01": 1, "2020-01-02": 1}, {"undated": 0}, tmp_path / "d.png")
    image = Image.open(tmp_path / "d.png").convert("RGB")
    pixels = image.load()
    for x in (0, 1, image.width - 2, image.width - 1):
        assert all(pixels[x, y] == (255, 255, 255) for y in range(image.height)), x
