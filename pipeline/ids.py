"""Stable article ids: CNA's own id, else a hash of the canonical URL."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pipeline.cna.url import parse_cna_url

_SLASHES_RE = re.compile(r"/{2,}")
_ESCAPE_RE = re.compile(r"%[0-9a-f]{2}|%[0-9A-F][a-f]|%[a-f][0-9A-F]")
_TRACKING_PARAMS = re.compile(r"^(utm_|fbclid$|gclid$|from$|spm$|ref$)", re.IGNORECASE)


def _upper(m: re.Match[str]) -> str:
    return m.group(0).upper()


def canonical_url(url: str) -> str:
    """Normalise a URL so the same article gets the same id: lower-case scheme and host,
    https, no default port, no duplicate slashes, no fragment, no tracking parameters."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = "https" if parts.scheme.lower() in ("http", "https") else parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    path = parts.path
    if "//" in path:
        path = _SLASHES_RE.sub("/", path)
    path = path or "/"
    if not path.isascii():  # percent-encode raw non-ASCII the way browsers do
        path = quote(path, safe="/%:@!$&'()*+,;=-._~")
    if "%" in path:  # escapes in upper case: %e4 and %E4 are the same byte
        path = _ESCAPE_RE.sub(_upper, path)
    if len(path) > 1:
        path = path.rstrip("/")
    query = ""
    if parts.query:
        query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                                 if not _TRACKING_PARAMS.match(k)))
    return urlunsplit((scheme, host, path, query, ""))


def article_identity(url: str) -> tuple[str, str | None]:
    """(article_id, section): CNA's 12-digit id and section, else sha256(canonical URL)[:16]."""
    cna = parse_cna_url(url)
    if cna is not None:
        return cna
    return hashlib.sha256(canonical_url(url).encode("utf-8", "surrogatepass")).hexdigest()[:16], None
