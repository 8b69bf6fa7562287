"""Coverage of the CNA text rules over a raw corpus, per feed.

    .venv/bin/python scripts/cna_coverage.py [CORPUS_ROOT] [--samples N] [--update-places]

Reads the raw posts directly (light-weight: front matter split, <p> text via lxml), runs
pipeline.cna.extract on each post and prints, per feed, the share of posts with credits,
roc_code, dateline and reporters, the warning counts, and a sample of CNA posts whose last
paragraphs end in a bracket or a code that the parser did not take.

--update-places adds the places of reporter-less datelines (``中央社台北7日電`` -> 台北)
found in the corpus to pipeline/data/places.txt (sorted, de-duplicated).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lxml.html  # noqa: E402

from pipeline.cna.dateline import _MARK_RE, _PLACE_SEP_RE, DATELINE_RE, parse_dateline_inner  # noqa: E402
from pipeline.cna.extract import extract_cna_fields, extract_credits_generic  # noqa: E402

CNA = "(臺)中央社CNA"
DEFAULT_ROOT = "/work/shared/corpus/archived"
PLACES = ROOT / "pipeline" / "data" / "places.txt"

_FM_RE = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n(.*)\Z", re.S)
_AUTHOR_RE = re.compile(r"^author:\s*(.*?)\s*$", re.M)
_EPOCH_RE = re.compile(r"<!--\s*(\d{9,14})\s*-->")
# learned "places" that are typos in the corpus, not places
_NOT_PLACES = {"張謙香港", "莫斯", "台北綜合"}
_BAD_PLACE_RE = re.compile(r"^[社者記]|綜合|综合|[0-9A-Za-z]")
_TRAIL_RE = re.compile(r"([）)﹚]\s*[0-9]{3,9}\S?|[0-9]{6,8})\s*$")


def read_post(path: str) -> tuple[str | None, int | None, list[str]]:
    """(author, epoch ms, <p> paragraphs) of one raw post; ([], None) parts when unreadable."""
    try:
        raw = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None, []
    m = _FM_RE.match(raw)
    if not m:
        return None, None, []
    fm, body = m.groups()
    am = _AUTHOR_RE.search(fm)
    author = am.group(1).strip().strip("'\"") if am else None
    em = _EPOCH_RE.search(body)
    epoch = int(em.group(1)) if em else None
    paras: list[str] = []
    try:
        doc = lxml.html.fromstring("<div>" + body + "</div>")
        for p in doc.xpath("//p"):
            t = p.text_content().strip()
            if t:
                paras.append(t)
    except Exception:  # noqa: BLE001 - a coverage tool: skip what lxml cannot read
        pass
    return author, epoch, paras


def iter_posts(root: str):
    for dirpath, _dirs, files in os.walk(root):
        for fn in sorted(files):
            if fn.endswith(".md"):
                path = os.path.join(dirpath, fn)
                yield (path, *read_post(path))


def update_places(posts: list[tuple[str, str | None, int | None, list[str]]]) -> int:
    learned: set[str] = set()
    for _path, _author, _epoch, paras in posts:
        for p in paras[:3]:
            for m in DATELINE_RE.finditer(p):
                inner = m.group("inner")
                f = parse_dateline_inner(inner)
                if not f or not f["dateline_place"] or _MARK_RE.search(inner):
                    continue
                place = f["dateline_place"]
                for part in [place, *_PLACE_SEP_RE.split(place)]:
                    part = part.strip()
                    if 2 <= len(part) <= 12 and not _BAD_PLACE_RE.search(part) and part not in _NOT_PLACES:
                        learned.add(part)
    lines = PLACES.read_text(encoding="utf-8").splitlines() if PLACES.exists() else []
    header = [s for s in lines if s.startswith("#")]
    known = {s.strip() for s in lines if s.strip() and not s.startswith("#")}
    known = {k for k in known if k not in _NOT_PLACES and not _BAD_PLACE_RE.search(k)}
    added = learned - known
    PLACES.write_text("\n".join(header + sorted(known | learned)) + "\n", encoding="utf-8")
    return len(added)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default=DEFAULT_ROOT)
    ap.add_argument("--samples", type=int, default=15, help="misses to list (default 15)")
    ap.add_argument("--update-places", action="store_true", help="add learned places to places.txt")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    posts = list(iter_posts(args.root))
    t_read = time.perf_counter() - t0
    if args.update_places:
        print(f"places.txt: {update_places(posts)} new places learned")
        from pipeline.cna.dateline import known_places

        known_places.cache_clear()

    stats: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    warns: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    misses: list[tuple[str, str]] = []
    t1 = time.perf_counter()
    for path, author, epoch, paras in posts:
        feed = author or "?"
        fn = extract_cna_fields if feed == CNA else extract_credits_generic
        _clean, fields, warnings = fn(paras, epoch)
        s = stats[feed]
        s["posts"] += 1
        s["credits"] += bool(fields["credits"])
        s["credit_line"] += fields["credit_line"] is not None
        s["roc_code"] += fields["roc_code"] is not None
        s["roc_date"] += fields["roc_date"] is not None
        s["dateline"] += fields["dateline"] is not None
        s["reporters"] += bool(fields["reporters"])
        s["place"] += fields["dateline_place"] is not None
        for w in warnings:
            warns[feed][w] += 1
        if feed == CNA and paras:
            tail = [m for p in paras[-3:] if (m := _TRAIL_RE.search(p))]
            if tail and (
                fields["roc_code"] is None or (tail[-1].group(1)[0] in "）)﹚" and not fields["credits"])
            ):
                misses.append((path, tail[-1].string[-60:]))
    t_parse = time.perf_counter() - t1

    cols = ["credits", "roc_code", "roc_date", "dateline", "place", "reporters"]
    print(f"{'feed':<24}{'posts':>7}" + "".join(f"{c:>11}" for c in cols))
    for feed, s in sorted(stats.items(), key=lambda kv: -kv[1]["posts"]):
        if s["posts"] < 20 and not any(s[c] for c in cols):
            continue
        n = s["posts"]
        print(f"{feed[:22]:<24}{n:>7}" + "".join(f"{100 * s[c] / n:>10.1f}%" for c in cols))
    for feed in (CNA, "法广"):
        if feed in warns:
            print(f"warnings {feed}: " + ", ".join(f"{k}={v}" for k, v in warns[feed].most_common()))
    print(f"CNA posts with a trailing bracket/code the parser did not take: {len(misses)}")
    for path, tail in misses[: args.samples]:
        print(f"  {os.path.relpath(path, args.root)}\n    …{tail!r}")
    print(f"read {len(posts)} posts in {t_read:.1f}s, parsed in {t_parse:.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
