"""The dataset card's figures: plain counts in, PNG files (and their counts as JSON) out.

Three simple charts (bars, axes, labels), drawn with Pillow on a canvas. matplotlib drew them
before; its import and drawing took 0.9-1.0 s of CPU, an eighth of a whole build on 2 cores,
for charts that need none of its machinery (the notebooks still use matplotlib). No pyarrow here:
the build hands the counts over as plain Python values. `FigureJob` is a process forked when the
build starts, which draws while the articles are written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.children import die_with_parent
from pipeline.errors import BuildError

FIGURES = {
    "per_day": "figures/articles_per_day.png",
    "per_section": "figures/articles_per_section.png",
    "per_source": "figures/articles_per_source.png",
}
MAX_BARS = 20
# The keys of card_stats() that the figures draw.
FIGURE_STATS = ("n_articles", "per_day", "dated_by", "source_order", "per_source_data", "per_section")

BAR = (76, 114, 176)
INK = (34, 34, 34)
AXIS = (110, 110, 110)
GRID = (225, 225, 225)
FONT_PX, TITLE_PX = 12, 14


def ranked(counts: dict[Any, int]) -> list[tuple[Any, int]]:
    """Most frequent first, ties by label, None last: a stable order for tables and bars."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None, str(kv[0])))


def _section_label(code: str | None, k: int) -> str:
    if code is None:
        return "(none)"
    # ASCII codes (aopl, firstnews, ...) are readable without a CJK font; anything else is numbered.
    return code if code.isascii() and code.isprintable() and len(code) <= 24 else f"section #{k}"


def _capped(items: list[tuple[str, int]], cap: int = MAX_BARS) -> list[tuple[str, int]]:
    if len(items) <= cap:
        return items
    rest = sum(c for _, c in items[cap - 1:])
    return items[: cap - 1] + [(f"{len(items) - cap + 1} others", rest)]


class _Canvas:
    """A white PNG canvas with Pillow's own font (embedded in Pillow, so the PNG bytes are the same
    wherever the pinned Pillow is installed), and text placed by its box: `align` gives the
    horizontal ("left", "center", "right") and vertical ("top", "middle", "bottom") position of
    the point given."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image, ImageDraw, ImageFont

        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default(size=FONT_PX)
        self.title_font = ImageFont.load_default(size=TITLE_PX)
        # one line's top and bottom per font, for every text (measured once)
        self.line_box = {font: self.draw.textbbox((0, 0), "0Ag", font=font)[1::2]
                         for font in (self.font, self.title_font)}

    def width_of(self, text: str) -> int:
        left, _, right, _ = self.draw.textbbox((0, 0), text, font=self.font)
        return int(right - left)

    def text(self, x: float, y: float, text: str, align: tuple[str, str], title: bool = False) -> None:
        font = self.title_font if title else self.font
        left, _, right, _ = self.draw.textbbox((0, 0), text, font=font)
        top, bottom = self.line_box[font]
        dx = {"left": -left, "center": -(left + right) / 2, "right": -right}[align[0]]
        dy = {"top": -top, "middle": -(top + bottom) / 2, "bottom": -bottom}[align[1]]
        # kept inside the canvas: a tick label centred on the plot's first or last day would be clipped
        x = min(max(x + dx, 2 - left), self.image.width - 2 - right)
        self.draw.text((round(x), round(y + dy)), text, font=font, fill=INK)

    def box(self, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int]) -> None:
        self.draw.rectangle((round(x0), round(y0), round(x1), round(y1)), fill=color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int]) -> None:
        self.draw.line((round(x0), round(y0), round(x1), round(y1)), fill=color)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(path, format="png")  # no time or software chunks: rebuilds are byte-identical


def count_ticks(top: int, most: int = 6) -> list[int]:
    """Round tick values from 0 up to at least `top`: steps of 1, 2 or 5 x 10^k, at most `most` steps."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            step = m * scale
            steps = -(-top // step)  # ceil
            if steps <= most:
                return list(range(0, max(steps, 1) * step + 1, step))
        scale *= 10


def date_ticks(first: date, last: date, most: int = 8) -> list[tuple[date, str]]:
    """Labelled days for an axis from `first` to `last`: every 1, 2, 7 or 14 days for a short
    span, else month starts every 1, 2, 3 or 6 months, or year starts every 1 to 100 years; at
    most `most` of them (for spans up to 800 years: the parser's dates are 1995-2100)."""
    span = (last - first).days + 1
    for days in (1, 2, 7, 14):
        if -(-span // days) <= most:
            return [(first + timedelta(n), (first + timedelta(n)).isoformat()) for n in range(0, span, days)]
    month = first.year * 12 + first.month - 1 + (first.day != 1)  # the first month start on the axis
    ticks: list[date] = []
    for months in (1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200):
        m = -(-month // months) * months
        ticks = []
        while (day := date(m // 12, m % 12 + 1, 1)) <= last:
            ticks.append(day)
            m += months
        if len(ticks) <= most:
            break
    return [(d, d.strftime("%Y-%m") if months < 12 else str(d.year)) for d in ticks]


def _barh(items: list[tuple[str, int]], title: str, path: Path) -> None:
    """Horizontal bars, the first item at the top, each with its count at its end."""
    row, top, bottom, width = 24, 40, 44, 760
    canvas = _Canvas(width, top + max(len(items), 1) * row + bottom)
    canvas.text(width / 2, 12, title, ("center", "top"), title=True)
    if not items:
        canvas.text(width / 2, top + row / 2, "no articles", ("center", "middle"))
        canvas.save(path)
        return
    left = 16 + max(canvas.width_of(label) for label, _ in items)
    right = width - 16 - max(canvas.width_of(f"{n:,}") for _, n in items)
    ticks = count_ticks(max(n for _, n in items))
    scale = (right - left) / ticks[-1]
    plot_bottom = top + len(items) * row
    for t in ticks:
        canvas.line(left + t * scale, top, left + t * scale, plot_bottom, GRID)
        canvas.text(left + t * scale, plot_bottom + 5, f"{t:,}", ("center", "top"))
    for i, (label, n) in enumerate(items):
        middle = top + i * row + row / 2
        if n > 0:
            canvas.box(left, middle - 8, left + n * scale, middle + 8, BAR)
        canvas.text(left - 6, middle, label, ("right", "middle"))
        canvas.text(left + n * scale + 4, middle, f"{n:,}", ("left", "middle"))
    canvas.line(left, top, left, plot_bottom, AXIS)
    canvas.line(left, plot_bottom, right, plot_bottom, AXIS)
    canvas.text((left + right) / 2, canvas.image.height - 6, "articles", ("center", "bottom"))
    canvas.save(path)


def _per_day_figure(per_day: dict[str, int], dated_by: dict[str, int], path: Path) -> None:
    """Articles per day as adjoining columns over every day from the first to the last."""
    width, height, top, bottom = 900, 320, 40, 40
    canvas = _Canvas(width, height)
    undated = dated_by.get("undated", 0)
    title = f"Articles per day (Asia/Taipei){f', {undated} undated not shown' if undated else ''}"
    canvas.text(width / 2, 12, title, ("center", "top"), title=True)
    if not per_day:
        canvas.text(width / 2, height / 2, "no dated articles", ("center", "middle"))
        canvas.save(path)
        return
    counts = {date.fromisoformat(day): n for day, n in per_day.items()}
    first, last = min(counts), max(counts)
    ticks = count_ticks(max(counts.values()))
    left = 16 + max(canvas.width_of(f"{t:,}") for t in ticks)
    right, plot_bottom = width - 24, height - bottom
    y_scale = (plot_bottom - top) / ticks[-1]
    day_width = (right - left) / ((last - first).days + 1)
    for t in ticks:
        canvas.line(left, plot_bottom - t * y_scale, right, plot_bottom - t * y_scale, GRID)
        canvas.text(left - 6, plot_bottom - t * y_scale, f"{t:,}", ("right", "middle"))
    for day, n in counts.items():
        x = left + (day - first).days * day_width
        if n > 0:
            canvas.box(x, plot_bottom - n * y_scale, x + day_width, plot_bottom, BAR)
    for day, label in date_ticks(first, last):
        x = left + (day - first).days * day_width
        canvas.line(x, plot_bottom, x, plot_bottom + 4, AXIS)
        canvas.text(x, plot_bottom + 7, label, ("center", "top"))
    canvas.line(left, top, left, plot_bottom, AXIS)
    canvas.line(left, plot_bottom, right, plot_bottom, AXIS)
    canvas.save(path)


def write_figures(out: Path, stats: dict[str, Any]) -> None:
    """Draw the card's figures from `stats` (the FIGURE_STATS keys of card_stats) into out/figures."""
    source_no = {s: i + 1 for i, s in enumerate(stats["source_order"])}
    sources = [(f"source #{source_no[s]}", c) for s, c in ranked(stats["per_source_data"])]
    sections = [(_section_label(s, i + 1), c) for i, (s, c) in enumerate(ranked(stats["per_section"]))]
    _per_day_figure(stats["per_day"], stats["dated_by"], out / FIGURES["per_day"])
    _barh(_capped(sections), "Articles per section (CNA URL code; (none) = not CNA)", out / FIGURES["per_section"])
    _barh(_capped(sources), "Articles per source (numbers as in the card's table)", out / FIGURES["per_source"])
    figure_counts = {
        "articles": stats["n_articles"],
        "per_day": stats["per_day"],
        "dated_by": stats["dated_by"],
        "per_section": {("(none)" if s is None else s): c for s, c in ranked(stats["per_section"])},
        "per_source": {f"source #{source_no[s]}": c for s, c in ranked(stats["per_source_data"])},
    }
    (out / "figures" / "counts.json").write_text(
        json.dumps(figure_counts, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def _draw_when_asked(reader: Any, parent_pid: int) -> None:
    """The figure process: import Pillow now, draw once the counts arrive (exit on EOF)."""
    die_with_parent(parent_pid)
    _Canvas(1, 1)  # imports Pillow and loads its font while the posts are processed
    try:
        out, stats = reader.recv()
    except EOFError:  # the build ended without asking (up to date, failed): nothing to draw
        return
    write_figures(Path(out), stats)


class FigureJob:
    """A forked process for the card's figures, started before the build processes the posts so
    that Pillow is imported by the time the counts are known, and drawing while the articles are
    written; `draw()` hands it the counts, `wait()` collects it, `close()` ends it unused.

    Forking is only safe while this process runs no other thread (a thread could hold a lock
    the child needs); otherwise, and where fork does not exist, `wait()` draws in line."""

    def __init__(self) -> None:
        self.process: Any = None
        self.writer: Any = None
        self.request: tuple[Path, dict[str, Any]] | None = None
        if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
            ctx = multiprocessing.get_context("fork")
            reader, self.writer = ctx.Pipe(duplex=False)
            # a failure in the child prints its traceback and sets a non-zero exit status
            self.process = ctx.Process(target=_draw_when_asked, args=(reader, os.getpid()), daemon=True)
            self.process.start()
            reader.close()

    def draw(self, out: Path, stats: dict[str, Any]) -> None:
        """Start drawing the figures of `stats` (card_stats' FIGURE_STATS keys) into out/figures."""
        self.request = (out, {k: stats[k] for k in FIGURE_STATS})
        if self.writer is not None:
            try:
                self.writer.send((str(out), self.request[1]))
            except OSError:  # the process died (its exit status is reported by wait())
                pass
            self.writer.close()
            self.writer = None

    def wait(self) -> None:
        """Block until the figures are written; BuildError if drawing them failed."""
        if self.request is None:
            raise BuildError("FigureJob.wait() before draw()")
        if self.process is None:
            write_figures(*self.request)
            return
        self.process.join()
        code = self.process.exitcode
        self.process = None
        if code != 0:
            raise BuildError(f"drawing the dataset card's figures failed (exit status {code}); "
                             "the traceback is above")

    def close(self) -> None:
        """End the figure process if it is still there (the build stopped before drawing)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.process is not None:
            self.process.terminate()
            self.process.join()
            self.process = None
