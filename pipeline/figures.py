"""The dataset card's figures: plain counts in, PNG files (and their counts as JSON) out.

Only matplotlib and numpy here, no pyarrow: the build hands the counts over as plain Python
values. `FigureJob` is a process forked when the build starts: it imports matplotlib while the
posts are processed and draws while the articles are written, so the card's figures (about
0.6 s of CPU) run beside the build instead of after it; on 2 cores they still share the CPU with it.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import BuildError

FIGURES = {
    "per_day": "figures/articles_per_day.png",
    "per_section": "figures/articles_per_section.png",
    "per_source": "figures/articles_per_source.png",
}
MAX_BARS = 20
# The keys of card_stats() that the figures draw.
FIGURE_STATS = ("n_articles", "per_day", "dated_by", "source_order", "per_source_data", "per_section")


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


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No Software/date chunks in the PNG: rebuilds are byte-identical.
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _barh(items: list[tuple[str, int]], title: str, path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    height = max(2.0, 0.3 * len(items) + 1.2)
    fig = Figure(figsize=(7, height))
    # fixed margins (labels are short ASCII): the constrained layout engine costs more than drawing
    fig.subplots_adjust(left=0.2, right=0.95, bottom=0.6 / height, top=1 - 0.45 / height)
    ax = fig.subplots()
    if items:
        labels = [lab for lab, _ in items][::-1]
        values = [c for _, c in items][::-1]
        ax.barh(range(len(items)), values, color="#4C72B0")
        ax.set_yticks(range(len(items)), labels)
        for y, v in enumerate(values):
            ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.margins(x=0.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no articles", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("articles")
    ax.set_title(title)
    _save(fig, path)


def _per_day_figure(per_day: dict[str, int], dated_by: dict[str, int], path: Path) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.2))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88)
    ax = fig.subplots()
    if per_day:
        days = np.array(list(per_day), dtype="datetime64[D]")
        # one filled step artist, not one rectangle per day: far cheaper to draw
        full = np.arange(days[0], days[-1] + np.timedelta64(2, "D"), dtype="datetime64[D]")
        counts = np.zeros(len(full) - 1)
        counts[np.searchsorted(full, days)] = list(per_day.values())
        ax.stairs(counts, full, fill=True, color="#4C72B0", linewidth=0)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        loc = AutoDateLocator()
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    else:
        ax.text(0.5, 0.5, "no dated articles", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("articles")
    undated = dated_by.get("undated", 0)
    ax.set_title(f"Articles per day (Asia/Taipei){f', {undated} undated not shown' if undated else ''}")
    _save(fig, path)


def write_figures(out: Path, stats: dict[str, Any]) -> None:
    """Draw the card's figures from `stats` (the FIGURE_STATS keys of card_stats) into out/figures."""
    import matplotlib

    rc = {
        "font.family": ["DejaVu Sans"],  # bundled with matplotlib: present everywhere
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "card",
    }
    source_no = {s: i + 1 for i, s in enumerate(stats["source_order"])}
    sources = [(f"source #{source_no[s]}", c) for s, c in ranked(stats["per_source_data"])]
    sections = [(_section_label(s, i + 1), c) for i, (s, c) in enumerate(ranked(stats["per_section"]))]
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")  # labels are ASCII; be safe anyway
        _per_day_figure(stats["per_day"], stats["dated_by"], out / FIGURES["per_day"])
        _barh(_capped(sections), "Articles per section (CNA URL code; (none) = not CNA)",
              out / FIGURES["per_section"])
        _barh(_capped(sources), "Articles per source (numbers as in the card's table)",
              out / FIGURES["per_source"])
    figure_counts = {
        "articles": stats["n_articles"],
        "per_day": stats["per_day"],
        "dated_by": stats["dated_by"],
        "per_section": {("(none)" if s is None else s): c for s, c in ranked(stats["per_section"])},
        "per_source": {f"source #{source_no[s]}": c for s, c in ranked(stats["per_source_data"])},
    }
    (out / "figures" / "counts.json").write_text(
        json.dumps(figure_counts, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def _prepare_matplotlib() -> None:
    """Import matplotlib and draw a throw-away figure (loads the font and the Agg renderer)."""
    import io

    from matplotlib.dates import AutoDateLocator  # noqa: F401
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().set_title("0")
    fig.savefig(io.BytesIO(), format="png", dpi=10)


def _draw_when_asked(reader: Any) -> None:
    """The figure process: import matplotlib now, draw once the counts arrive (exit on EOF)."""
    _prepare_matplotlib()
    try:
        out, stats = reader.recv()
    except EOFError:  # the build ended without asking (up to date, failed): nothing to draw
        return
    write_figures(Path(out), stats)


class FigureJob:
    """A forked process for the card's figures, started before the build processes the posts so
    that importing matplotlib (about half a second) is done by the time the counts are known;
    `draw()` hands it the counts, `wait()` collects it, `close()` ends it unused.

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
            self.process = ctx.Process(target=_draw_when_asked, args=(reader,), daemon=True)
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
