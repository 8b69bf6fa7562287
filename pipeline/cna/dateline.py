"""Datelines: ``（中央社記者沈佩瑤台北23日電）`` at the start of a CNA story.

Pure string functions; they never raise. Place names come from ``pipeline/data/places.txt``
(built from reporter-less datelines in the corpus plus Taiwanese and world place names).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

_PLACES_PATH = Path(__file__).resolve().parent.parent / "data" / "places.txt"

_AGENCY = r"(?:中央通訊社|中央社|中央杜|中央(?=記|记)|法新社)"
_OPEN = r"[（(﹙]"
_CLOSE = r"[）)﹚]"
_NOT_BRACKET = r"[^（()﹙）)﹚\n]"

# A dateline bracket anywhere in a text (used to count datelines in a post). The inner text never
# ends in a space (the lazy repeat leaves those to the spaces before the bracket), said outright so
# that a long run of spaces is scanned once, not once per possible inner length.
_DATELINE_BODY = (
    rf"[ \t\u3000]*(?P<inner>{_AGENCY}{_NOT_BRACKET}{{0,60}}?(?<![ \t\u3000]))[ \t\u3000]*{_CLOSE}"
)
DATELINE_RE = re.compile(rf"{_OPEN}{_DATELINE_BODY}")
# A dateline at the start of a paragraph (after its leading white space), optionally after a short
# label ("特派員看世界"). Matched within a window of _LEAD_WINDOW characters only.
_LEAD_RE = re.compile(
    rf"(?P<prefix>[^（()﹙）)﹚。！？!?，,\n]{{0,20}}?)\s*(?P<bracket>{_OPEN}){_DATELINE_BODY}"
)
_LEAD_WINDOW = 160
_LEADING_WS_RE = re.compile(r"\s*")
_NON_WS_RE = re.compile(r"\S")

_AGENCY_RE = re.compile(rf"^{_AGENCY}")
_NOT_DATELINE_RE = re.compile(r"攝|摄|照片|提供|檔案|档案|資料|资料|圖|图|取自")
_KIND_RE = re.compile(
    r"(?:"
    r"(?:網站|网站|路透|法新|美聯|美联|共同|韓聯|韩联|德新)?(?:專|专)?(?:電|电)"
    r"|(?:綜合|综合)*(?:外電|外电)?(?:報導|报导|報道|报道)+"
    r"|(?:綜合|综合)+(?:外電|外电)?"
    r"|特稿|(?:電視|电视)?(?:專訪|专访)"
    r")$"
)
# Every character _KIND_RE can match (checked by a test).
_KIND_CHARS = frozenset("網站网路透法新美聯联共同韓韩德專专電电綜综合外報报導导道特稿視视訪访")
_DAY_RE = re.compile(r"(?:\d{4}\s*年\s*)?(?:\d{1,2}\s*月\s*)?(?P<day>\d{1,2})\s*日?")
_WEBSITE_RE = re.compile(r"^\s*(?:網站|网站)\s*$")
_MARK_RE = re.compile(r"記者特派員|记者特派员|駐.{1,6}?特派員|特派員|特派员|記者|记者|記長|記")
_NAME_SEP_RE = re.compile(r"[、，,；;]+")
_PLACE_SEP_RE = re.compile(r"[-－─—/／]")
_SLASH_PLACES_RE = re.compile(r"[/／](?=[^/／]*[、，,])")
_WS_STRIP = " \t\u3000\u00a0"


@functools.lru_cache(maxsize=1)
def known_places() -> frozenset[str]:
    """The gazetteer (loaded once)."""
    try:
        lines = _PLACES_PATH.read_text(encoding="utf-8").splitlines()
    except OSError:
        return frozenset()
    return frozenset(s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#"))


def split_name_place(seg: str) -> tuple[str | None, str | None]:
    """Split ``沈佩瑤台北`` into (name, place) using the longest known place suffix. Neither part
    keeps the spaces around it (``王小明 台北``, a no-break space from ``&nbsp;``)."""
    name, place = _split_name_place(seg.strip(_WS_STRIP))
    return (name and _clean(name)) or None, (place and _clean(place)) or None


def _split_name_place(seg: str) -> tuple[str | None, str | None]:
    if not seg:
        return None, None
    places = known_places()
    # a second place after a separator ("上海-台北"): split only the part before it
    m = _PLACE_SEP_RE.search(seg)
    if m and m.start() > 0:
        name, place = split_name_place(seg[: m.start()])
        if place is None:  # "王小明/台北": the separator parts the name from the place
            return name, seg[m.end() :]
        return name, place + seg[m.start() :]
    if seg.endswith("連線") and seg[:-2] in places:
        return None, seg
    for name_len in (2, 3, 4):  # longest place first, name of 2-4 characters
        if len(seg) > name_len and seg[name_len:] in places:
            return seg[:name_len], seg[name_len:]
    if seg in places:
        return None, seg
    for i in range(1, len(seg)):  # any known place suffix, even with an odd-length name
        if seg[i:] in places and i <= 6:
            return seg[:i], seg[i:]
    if len(seg) <= 4:
        return seg, None
    return seg[:3], seg[3:]


def _clean(s: str) -> str:
    return s.strip(_WS_STRIP)


@functools.lru_cache(maxsize=4096)
def _dateline_head(inner: str) -> tuple[str | None, int | None, str, str] | None:
    """(kind, day, head, post) of a dateline's inner text, or None when it is not a dateline.

    Cached: ``count_datelines`` re-checks the dateline ``parse_dateline`` has just read. It does not
    depend on the gazetteer, so the cache never goes stale.
    """
    am = _AGENCY_RE.match(inner)
    if am is None or _NOT_DATELINE_RE.search(inner):
        return None
    rest = _clean(inner[am.end() :])
    # the kind ends the text and is made of _KIND_CHARS only: search from where their run starts
    k = len(rest)
    while k and rest[k - 1] in _KIND_CHARS:
        k -= 1
    km = _KIND_RE.search(rest, k) if k < len(rest) else None
    kind = km.group(0) if km else None
    before = _clean(rest[: km.start()]) if km else rest
    day = None
    head, post = before, ""
    dm = None
    for found in _DAY_RE.finditer(before):  # the last day-like number
        dm = found
    if dm is not None:
        day = int(dm.group("day"))
        head, post = _clean(before[: dm.start()]), _clean(before[dm.end() :])
        if kind is None and "日" not in dm.group(0) and post:
            return None
    elif kind is None and not _WEBSITE_RE.match(before):
        return None
    if kind is None and day is None and not _WEBSITE_RE.match(before):
        return None
    return kind, day, head, post


def _is_dateline_inner(inner: str) -> bool:
    return _dateline_head(inner) is not None


def parse_dateline_inner(inner: str) -> dict | None:
    """Parse the text inside a dateline bracket (``中央社記者沈佩瑤台北23日電``)."""
    parsed = _dateline_head(inner)
    if parsed is None:
        return None
    kind, day, head, post = parsed
    reporters: list[str] = []
    place: str | None = None
    mm = _MARK_RE.search(head)
    if mm is not None:
        prefix_place = _clean(head[: mm.start()]) or None
        names_part = head[mm.end() :]
        sm = _SLASH_PLACES_RE.search(names_part)  # "甲、乙/雪梨、東京": names, then places
        if sm and not post:
            post = _clean(names_part[sm.end() :])
            names_part = names_part[: sm.start()]
        names = [_clean(n) for n in _NAME_SEP_RE.split(names_part)]
        names = [n for n in names if n]
        places: list[str] = []
        if names and not prefix_place and not post:
            for k, seg in enumerate(names):
                if k < len(names) - 1 and len(seg) <= 4:
                    continue  # a plain name; only the last (or a long) segment carries a place
                name, seg_place = split_name_place(seg)
                names[k] = name or ""
                if seg_place and seg_place not in places:
                    places.append(seg_place)
        reporters = [n for n in names if n]
        place = "、".join(places) or prefix_place
    else:
        place = head or None
    if post:
        place = post if place is None else place + post
    if place is not None and _WEBSITE_RE.match(place):
        place = None
    return {
        "dateline": inner.strip(_WS_STRIP),
        "dateline_place": place or None,
        "dateline_day": day,
        "dateline_kind": kind,
        "reporters": reporters,
    }


def parse_dateline(text: str) -> dict | None:
    """Parse the dateline at the start of a first paragraph.

    Returns ``{'dateline', 'dateline_place', 'dateline_day', 'dateline_kind', 'reporters',
    'start', 'end'}`` (start/end: span of the bracket in ``text``; the body starts at ``end``;
    ``start`` > 0 when a short label precedes the bracket) or None.
    """
    if not isinstance(text, str):
        return None
    lead = _LEADING_WS_RE.match(text).end() if text[:1].isspace() else 0
    stop = lead + _LEAD_WINDOW
    # every agency spelling starts with 中央 or 法新社: a cheap test before any regex
    if text.find("中央", lead, stop) < 0 and text.find("法新社", lead, stop) < 0:
        return None
    m = _LEAD_RE.match(text, lead, stop)
    if m is None:
        return None
    if m.group("prefix") and _NON_WS_RE.search(text, m.end()) is None:
        return None  # text then a bracket at the end: a mention, not a dateline
    fields = parse_dateline_inner(m.group("inner"))
    if fields is None:
        return None
    fields["start"] = m.start("bracket")
    fields["end"] = m.end()
    return fields


def count_datelines(paragraphs: list[str]) -> int:
    """Number of real datelines (validated) in a list of paragraphs."""
    n = 0
    for p in paragraphs:
        # every agency spelling starts with 中央 or 法新社: skip the regex when neither is there
        if not isinstance(p, str) or ("中央" not in p and "法新社" not in p):
            continue
        for m in DATELINE_RE.finditer(p):
            if _is_dateline_inner(m.group("inner")):
                n += 1
    return n
