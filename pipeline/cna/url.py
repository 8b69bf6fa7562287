"""CNA identity: the 12-digit article id and the section code in a cna.com.tw URL."""

from __future__ import annotations

import re

_CNA_URL_RE = re.compile(
    r"^https?://(?:[a-z0-9-]+\.)*cna\.com\.tw/+news/+([A-Za-z0-9_-]+)/+(\d{12})\.aspx", re.IGNORECASE
)
_CNA_HOST_RE = re.compile(r"^https?://(?:[a-z0-9-]+\.)*cna\.com\.tw(?:[:/]|$)", re.IGNORECASE)


def parse_cna_url(url: str) -> tuple[str, str] | None:
    """`https://www.cna.com.tw/news/aopl/202010010003.aspx` -> ('202010010003', 'aopl')."""
    m = _CNA_URL_RE.match(url.strip())
    if m is None:
        return None
    return m.group(2), m.group(1).lower()


def is_cna(url: str | None, source: str | None) -> bool:
    """A post is CNA copy when its URL is on cna.com.tw or its feed is CNA's."""
    if url and _CNA_HOST_RE.match(url.strip()):
        return True
    return bool(source and "中央社" in source)
