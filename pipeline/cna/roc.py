"""ROC (Minguo) date codes: the 6/7-digit code CNA appends after the credit block.

``1091001`` is ROC year 109, month 10, day 1 -> 2020-10-01 (ROC year + 1911).
Before ROC year 100 the code has 6 digits (``990101`` -> 2010-01-01).
"""

from __future__ import annotations

import datetime as _dt
import functools
import re

# A trailing code at the end of a string (after optional whitespace).
ROC_CODE_RE = re.compile(r"(?<!\d)(\d{6,8})\s*$")

_DIGITS_RE = re.compile(r"[0-9]{6,7}")
# A code may be typed in full-width digits (１０９１００１): it is read as its ASCII twin.
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_TAIPEI = _dt.timezone(_dt.timedelta(hours=8))  # Taiwan has had no DST since 1979
_FAR_DAYS = 2
_TAIPEI_OFFSET_MS = 8 * 3600 * 1000
_DAY_MS = 86_400_000
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_MIN_MS = (_dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def roc_code_to_date(code: str) -> _dt.date | None:
    """Convert a 7-digit (YYYMMDD) or 6-digit (YYMMDD, ROC year < 100) code to a date."""
    if not isinstance(code, str):
        return None
    code = code.translate(FULLWIDTH_DIGITS)
    if not _DIGITS_RE.fullmatch(code):
        return None
    return _code_date(code)


@functools.lru_cache(maxsize=4096)
def _code_date(code: str) -> _dt.date | None:
    """The date of a 6/7-digit code (cached: a few hundred codes recur in thousands of posts)."""
    year, month, day = int(code[:-4]), int(code[-4:-2]), int(code[-2:])
    if year < 1:
        return None
    try:
        return _dt.date(year + 1911, month, day)
    except ValueError:
        return None


def _published_taipei_date(published_at_ms: int | None) -> _dt.date | None:
    if published_at_ms is None or isinstance(published_at_ms, bool):
        return None
    try:
        # whole days since 1970-01-01 in Asia/Taipei (UTC+8), in integers: no float rounding
        ms = int(published_at_ms)
        if ms < _MIN_MS:  # before 0001-01-01 UTC: out of datetime's range
            return None
        days = (ms + _TAIPEI_OFFSET_MS) // _DAY_MS
        return _dt.date.fromordinal(_EPOCH_ORDINAL + days)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def check_roc_code(code: str, published_at_ms: int | None) -> tuple[_dt.date | None, list[str]]:
    """Return (roc_date, warnings) for a code as written.

    Warnings: ``roc_code_malformed`` (not 6/7 digits), ``roc_code_invalid_date``,
    ``roc_date_far_from_published`` (date kept; > 2 days from published_at in Asia/Taipei).
    """
    if isinstance(code, str):
        code = code.translate(FULLWIDTH_DIGITS)
    if not isinstance(code, str) or not _DIGITS_RE.fullmatch(code):
        return None, ["roc_code_malformed"]
    date = _code_date(code)
    if date is None:
        return None, ["roc_code_invalid_date"]
    published = _published_taipei_date(published_at_ms)
    if published is not None and abs((date - published).days) > _FAR_DAYS:
        return date, ["roc_date_far_from_published"]
    return date, []
