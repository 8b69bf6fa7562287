"""Parse stage: raw bytes of one post -> front matter fields, epoch, body HTML.

Pure functions. Anything unusable raises `Reject`; anything odd but usable adds a warning code.
"""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline._walk import plain_utf8
from pipeline.errors import Reject


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader (no arbitrary tags), not its C one: the C loader recurses on
    the C stack and crashes the whole process on a value nested some 25,000 levels deep (a 30 KB
    front matter), where this one raises RecursionError. Its speed does not matter: the fast paths
    below read all but 2 of the corpus's 21,816 front matters.

    Merge keys (`<<`) are refused (the post falls back to its key: value lines): merging aliases of
    merged aliases doubles the work at each level, and 30 levels, under 1 KB, would hang a build."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(None, None, "merge keys (<<) are not read",
                                                        key_node.start_mark)
        super().flatten_mapping(node)


# What a safe load may raise on hostile or odd front matter besides YAMLError: a value its
# constructors refuse (2020-02-30, `!!int abc`, an integer of over 4,300 digits), bad text, nesting.
_YAML_LOAD_ERRORS = (yaml.YAMLError, UnicodeError, RecursionError, ValueError, OverflowError, TypeError)

MAX_FRONT_MATTER_BYTES = 64 * 1024

# Characters common in Chinese news text: used to choose between Big5 and GB18030 readings.
_COMMON_HANZI = frozenset("的是在了不中國国人有一日電电台年說说大上會会為为")
# C0 controls except tab/newline/carriage return, plus DEL: never meaningful in a post.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_BYTES = bytes(range(0, 9)) + b"\x0b\x0c" + bytes(range(14, 32)) + b"\x7f"
_HIGH_BYTES = bytes(range(128, 256))
# Bad UTF-16 code units always tolerated: a file cut short has at most a dangling last byte and
# half a surrogate pair before it.
_UTF16_DAMAGE_MIN = 2
# The archiver's first body line: <!--epoch ms-->. Any short comment there is taken as the
# epoch slot (and warned about when it holds no plausible time), so it never leaks into the body.
_EPOCH_RE = re.compile(r"\A\s*<!--([^\n]{0,200}?)-->[ \t]*\r?\n?")
_EPOCH_DIGITS_RE = re.compile(r"\s*(-?\d+)\s*")
_RULE_RE = re.compile(r"^-{3,}[ \t]*$", re.M)
# The archiver's `[title](url)` line and the rule under it are looked for this far into the body.
_TITLE_LINK_WINDOW = 4096
_SIMPLE_LINE_RE = re.compile(r"^([A-Za-z_][\w-]*):[ \t]*(.*?)[ \t]*$")
# The archiver's own front matter, byte for byte; values that YAML would read differently
# (quotes or backslashes in the title, indicators in the author) fall through to the general path.
_ARCHIVER_FRONT_RE = re.compile(
    r'layout: post\ntitle: "(?P<title>[^"\\\n]*)"\ndate: (?P<date>[0-9T:.Z-]+)\n'
    r"author: (?P<author>[^\n]+?)\nfrom: (?P<from>[^\s\[\]{},]+)\n"
    r"tags: \[ (?P<tags>[^\n,\[\]]+?) \]\ncategories: \[ (?P<categories>[^\n,\[\]]+?) \]\n?\Z")
# A post's head as the archiver writes it: its first line, then the front matter (checked by
# _ARCHIVER_FRONT_RE once decoded) up to the closing line, which the epoch comment follows; then
# that comment, the `[title](url)` line and the rule under it. The body follows, from the rule's
# line end, as strip_title_link cuts it.
_ARCHIVER_OPENING = b"---\nlayout: post\n"
_ARCHIVER_CLOSING = b"\n---\n<!--"
_ARCHIVER_EPOCH_RE = re.compile(rb"(?P<epoch>[0-9]{1,15})-->\n\[[^\n]*\n-{3,}[ \t]*(?=\n)")
# A plain YAML scalar may not start with one of these (or it means something else).
_YAML_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@` \t")

# How much of a `from` that is no URL a reject's detail shows.
_URL_SHOWN = 80
# An http(s) URL whose host is plain letters, digits, dots and dashes: every archiver `from`. One
# C-level match where urlsplit costs 3.5 µs a post; anything else is left to urlsplit. It accepts
# nothing urlsplit would not: ASCII only (without it, a case-blind [a-z] matches "ſ" and the Kelvin
# sign too, and "httpſ://" is no scheme), and after the host only a port and the end of urlsplit's
# netloc (a bare ":" may start "user:@" with no host after it, or a "[" that urlsplit refuses).
_PLAIN_HTTP_URL_RE = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]*)?(?:[/?#]|\Z)", re.IGNORECASE | re.ASCII)

# Epoch milliseconds accepted as a publish time: 1995-01-01 .. 2100-01-01.
_EPOCH_MIN_MS = 788_918_400_000
_EPOCH_MAX_MS = 4_102_444_800_000


def decode_post(raw: bytes) -> tuple[str, list[str]]:
    """Decode a post's bytes to text, trying UTF-8, UTF-16, Big5 and GB18030.

    Returns (text, warnings). Rejects empty files and binary garbage.
    """
    if not raw or raw.isspace():  # no stripped copy of the whole post
        raise Reject("empty_file", f"{len(raw)} bytes, no text")
    warnings: list[str] = []
    text: str | None = None
    bom8 = raw.startswith(codecs.BOM_UTF8)
    if bom8:
        raw = raw[len(codecs.BOM_UTF8):]
        warnings.append("decoded_bom")
    else:
        codec = _utf16_codec(raw)
        if codec is not None:
            try:
                text = raw.decode(codec)
                warnings.append("decoded_utf16")
            except UnicodeDecodeError:
                text = _damaged_utf16(raw, codec)
                if text is not None:
                    warnings += ["decoded_utf16", "invalid_utf16"]
    if text is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            replaced = raw.decode("utf-8", errors="replace")
            # a UTF-8 file with a few bad bytes stays UTF-8: GB18030 would happily read it as mojibake
            legacy = None if (bom8 or _mostly_utf8(raw, replaced)) else _decode_legacy(raw)
            if legacy is not None:
                text = legacy
                warnings.append("decoded_legacy")
            else:
                text = replaced
                warnings.append("invalid_utf8")
    # the common case (clean UTF-8 text) costs one C-level scan of the bytes
    suspicious = "invalid_utf8" in warnings or "decoded_utf16" in warnings or len(raw.translate(None, _CONTROL_BYTES)) != len(raw)
    if suspicious:
        if _is_binary(text):
            raise Reject("binary_content", "the bytes do not decode to text in UTF-8, UTF-16, Big5 or GB18030")
        if _CONTROL_RE.search(text):
            text = _CONTROL_RE.sub("", text)
            warnings.append("control_chars_removed")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, warnings


def _utf16_codec(raw: bytes) -> str | None:
    """The UTF-16 codec for `raw`, or None when it is not UTF-16. With a BOM, "utf-16" reads it;
    without one, ASCII front matter leaves every other byte NUL: the even bytes in big-endian
    text, the odd ones in little-endian."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = raw[:200]
    if len(head) < 8 or b"\0" not in head:  # memchr: most posts are settled here
        return None
    if head[1::2].count(0) > len(head) // 3:
        return "utf-16-le"
    if head[0::2].count(0) > len(head) // 3:
        return "utf-16-be"
    return None


def _damaged_utf16(raw: bytes, codec: str) -> str | None:
    """UTF-16 text with a few bad code units (a dangling last byte in a file cut short, a split
    surrogate pair) read with U+FFFD in their place; None when there are more than 2 and 1 in 200
    characters (binary bytes read as UTF-16 hold a lone surrogate in about one unit in 32), or any
    NUL character: two aligned zero bytes, which no text holds and binary formats are full of (a
    font or a .mo catalog has few lone surrogates but is no text)."""
    replaced = raw.decode(codec, errors="replace")
    if "\x00" in replaced:
        return None
    # "ignore" drops the bad units and keeps any U+FFFD the text itself holds
    bad = replaced.count("\ufffd") - raw.decode(codec, errors="ignore").count("\ufffd")
    return replaced if bad <= _UTF16_DAMAGE_MIN or bad * 200 < len(replaced) else None


def _mostly_utf8(raw: bytes, replaced: str) -> bool:
    """True when only a few of the non-ASCII bytes are invalid UTF-8 (a damaged UTF-8 file),
    not most of them (a Big5 or GB18030 file)."""
    bad = replaced.count("\ufffd") - raw.count("\ufffd".encode())
    high = len(raw) - len(raw.translate(None, _HIGH_BYTES))
    return bad * 10 < high


def _decode_legacy(raw: bytes) -> str | None:
    """Read Big5 (or cp950, its Windows form) or GB18030 text; when several decode, keep the one
    with the most common hanzi."""
    candidates = []
    for codec in ("big5", "cp950", "gb18030"):  # cp950: Windows' Big5, with € and more
        try:
            candidates.append(raw.decode(codec))
        except UnicodeDecodeError:
            continue
    if not candidates:
        return None
    return max(candidates, key=lambda t: sum(ch in _COMMON_HANZI for ch in t))


def _is_binary(text: str) -> bool:
    sample = text[:4096]
    bad = sample.count("\ufffd") + len(_CONTROL_RE.findall(sample))
    return bad > max(8, len(sample) // 10)


def split_post(text: str) -> tuple[str, str]:
    """Split a post into (front matter text, rest). The file must open with a '---' line."""
    if not text.startswith("---"):
        stripped = text.lstrip()
        if not stripped.startswith("---"):
            raise Reject("no_front_matter", "the file does not start with '---'")
        text = stripped
    first_nl = text.find("\n")
    if first_nl < 0 or text[:first_nl].strip() != "---":
        raise Reject("no_front_matter", "the first line is not '---'")
    match = _RULE_RE.search(text, first_nl + 1)
    # only a line that is exactly '---' closes the front matter
    while match and match.group(0).strip() != "---":
        match = _RULE_RE.search(text, match.end())
    if match is None:
        raise Reject("unclosed_front_matter", "no closing '---' line after the front matter")
    front = text[first_nl + 1:match.start()]
    if len(front.encode("utf-8", "surrogatepass")) > MAX_FRONT_MATTER_BYTES:
        raise Reject("bad_front_matter", f"front matter larger than {MAX_FRONT_MATTER_BYTES} bytes")
    return front, text[match.end():]


def _archiver_fields(front: str) -> dict[str, Any] | None:
    """The fields of front matter in the exact layout the archiver writes, with values YAML reads
    as they are; None for anything else. One C-level match instead of a line loop."""
    m = _ARCHIVER_FRONT_RE.match(front)
    if (m is not None and _plain(m["author"]) and _plain(m["from"]) and _plain(m["tags"])
            and _plain(m["categories"])):
        return {"layout": "post", "title": m["title"], "date": m["date"], "author": m["author"],
                "from": m["from"], "tags": [m["tags"]], "categories": [m["categories"]]}
    return None


def parse_front_matter(front: str) -> tuple[dict[str, Any], list[str]]:
    """Front matter text -> {key: value}. Fast path for the archiver's simple lines,
    `yaml.safe_load` for anything else, and a line-by-line fallback for invalid YAML."""
    archiver = _archiver_fields(front)
    if archiver is not None:
        return archiver, []
    fast = _parse_simple_front_matter(front)
    if fast is not None:
        return fast, []
    try:
        loaded = yaml.load(front, Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except _YAML_LOAD_ERRORS:
        loaded = None
    if isinstance(loaded, dict):
        return _without_controls({str(k): v for k, v in loaded.items()})
    fields = _read_key_value_lines(front)
    if not fields:
        raise Reject("bad_front_matter", "front matter is neither YAML nor key: value lines")
    return fields, ["front_matter_fallback"]


def _plain(value: str) -> bool:
    """True when YAML would read `value` as exactly this plain string."""
    return (value[0] not in _YAML_INDICATORS and ": " not in value and " #" not in value
            and not value.endswith(":") and value.strip() == value)


def _parse_simple_front_matter(front: str) -> dict[str, Any] | None:
    """The archiver writes `key: value` lines whose values YAML reads as plain strings,
    a double-quoted title and `[ a ]` lists. Returns None for anything else."""
    fields: dict[str, Any] = {}
    for line in front.split("\n"):
        key, sep, value = line.partition(":")
        if not sep:
            if line.strip():
                return None
            continue
        if not key.isidentifier() or key in fields or (value and value[0] != " "):
            return None
        value = value.strip()
        if not value:
            fields[key] = None
        elif value[0] == '"':
            if len(value) < 2 or value[-1] != '"' or '"' in value[1:-1] or "\\" in value:
                return None
            fields[key] = value[1:-1]
        elif value[0] == "[":
            if value[-1] != "]":
                return None
            items = [item.strip() for item in value[1:-1].split(",")]
            items = [item for item in items if item]
            if not all(_plain(i) for i in items):
                return None
            fields[key] = items
        elif _plain(value):
            fields[key] = value
        else:
            return None
    return fields


def _read_key_value_lines(front: str) -> dict[str, Any]:
    """Last resort for broken YAML (e.g. unescaped quotes in a title): take each
    top-level `key: value` line as written, stripping one pair of outer quotes."""
    fields: dict[str, Any] = {}
    for line in front.split("\n"):
        m = _SIMPLE_LINE_RE.match(line)
        if m is None:
            continue
        key, value = m.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key] = value  # the last of a repeated key, as YAML reads it
    return fields


def scalar_text(value: Any) -> str | None:
    """A front-matter value as text; containers (or alias bombs) are not text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (bool, int, float, datetime, date)):
        return str(value)
    return None


def url_problem(value: Any) -> str | None:
    """Why front matter `from` is no URL to name the post by, or None. Only an http(s) URL with a
    host is: anything else (`from: 12345`, a bare path) would still hash to an article_id, and to
    the same one in every post that holds it."""
    text = scalar_text(value)
    if text is None:
        if value is None or isinstance(value, str):
            return "front matter has no `from` URL"
        return f"`from` is a {type(value).__name__}, not a URL"
    text = text.strip()
    if _PLAIN_HTTP_URL_RE.match(text):
        return None
    try:
        parts = urlsplit(text)
        # a host of spaces names nothing ("http:// /a")
        if parts.scheme.lower() in ("http", "https") and parts.hostname and not parts.hostname.isspace():
            return None
    except ValueError:  # an unclosed "[" (IPv6) or characters NFKC would change in the host
        pass
    more = "…" if len(text) > _URL_SHOWN else ""
    return f"`from` is not an http(s) URL: {text[:_URL_SHOWN]!r}{more}"


def _without_controls(fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """YAML's fields, their text without control characters: YAML escapes ("\\0", "\\x1b") put
    them there even when the file's bytes hold none (which decode_post has cleaned already)."""
    dirty = [k for k, v in fields.items() if isinstance(v, str) and _CONTROL_RE.search(v)]
    for key in dirty:
        fields[key] = _CONTROL_RE.sub("", fields[key])
    return fields, ["control_chars_removed"] if dirty else []


def parse_timestamp_ms(value: Any) -> int | None:
    """Front matter `date` (string or YAML timestamp) -> epoch ms UTC, or None."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = scalar_text(value)
        if text is None or len(text) > 64:
            return None
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            # imported here: dates in the archiver's ISO form never need it, and its import
            # (~40 ms of CPU) would otherwise be paid by every build
            from dateutil import parser as dateutil_parser

            try:
                # fields the text lacks come from `default`, not from today: "07:59" or "Feb 7"
                # would otherwise name a different day on every build (1970 is out of range)
                dt = dateutil_parser.parse(text, default=datetime(1970, 1, 1))
            except (ValueError, ArithmeticError, TypeError):  # overflow, or decimal's on a huge field
                return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        ms = int(dt.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        return None
    return ms if _EPOCH_MIN_MS <= ms < _EPOCH_MAX_MS else None


def parse_epoch_comment(rest: str) -> tuple[int | None, str, list[str]]:
    """Read the `<!--epoch ms-->` line that opens the body. Returns (ms, rest, warnings)."""
    m = _EPOCH_RE.match(rest)
    if m is None:
        return None, rest, ["no_epoch"]
    digits = _EPOCH_DIGITS_RE.fullmatch(m.group(1))
    ms = int(digits.group(1)) if digits and len(digits.group(1)) <= 15 else None
    if ms is None or not (_EPOCH_MIN_MS <= ms < _EPOCH_MAX_MS):
        return None, rest[m.end():], ["bad_epoch"]
    return ms, rest[m.end():], []


def strip_title_link(rest: str) -> str:
    """Drop the archiver's `[title](url)` line and the `------` rule before the HTML."""
    m = _RULE_RE.search(rest, 0, _TITLE_LINK_WINDOW)
    if m and rest[:m.start()].lstrip().startswith("["):
        return rest[m.end():]
    return rest


def body_utf8(raw: bytes, text: str, body: str, exact: bool) -> bytes:
    """`body` (the tail of `text`) as UTF-8 bytes. When `text` is exactly `raw` decoded as UTF-8
    (`exact`: the common case), the body is the tail of `raw` that follows the text's prefix:
    one short encode and a slice, not an encode of the whole body."""
    if not exact:
        return body.encode("utf-8", "replace")
    return raw[len(text[:len(text) - len(body)].encode("utf-8")):]


def _front_values(fields: dict[str, Any], warnings: list[str]) -> tuple[str | None, str | None, str, int | None]:
    """(title, source, url, feed_date_ms) of front matter whose `from` passed url_problem, as both
    ways of parse_post give them; no_source, no_title and bad_feed_date go to `warnings`."""
    source = scalar_text(fields.get("author"))
    if source is None:
        warnings.append("no_source")
    title = scalar_text(fields.get("title"))
    if title is None:
        warnings.append("no_title")
    feed_date_ms = parse_timestamp_ms(fields.get("date"))
    if feed_date_ms is None:
        warnings.append("bad_feed_date")
    return title, source, str(scalar_text(fields.get("from"))).strip(), feed_date_ms


def _archiver_post(raw: bytes) -> dict[str, Any] | None:
    """parse_post for a post exactly as the archiver writes it (nearly every post), or None.

    Plain UTF-8 throughout (one C pass, where decode_post decodes the whole post and scans it
    for controls), the archiver's front matter, an epoch comment in range, the title link and
    its rule: then only the front matter is decoded and the body is the rest of the bytes.
    Everything else goes the general way, which gives the same result for such posts
    (tests/test_parse_fast.py holds the two to that on every corpus post and on mutations)."""
    if type(raw) is not bytes or not raw.startswith(_ARCHIVER_OPENING):  # plain_utf8 takes bytes only
        return None
    closing = raw.find(_ARCHIVER_CLOSING, len(_ARCHIVER_OPENING) - 1, MAX_FRONT_MATTER_BYTES)
    if closing < 0:
        return None
    start = closing + len(_ARCHIVER_CLOSING)
    # strip_title_link looks for the rule within _TITLE_LINK_WINDOW characters (so at most that
    # many bytes) after the epoch line; "-->\n" and 15 digits come before it
    m = _ARCHIVER_EPOCH_RE.match(raw, start, start + _TITLE_LINK_WINDOW + 20)
    if m is None or m.end() - m.end("epoch") > _TITLE_LINK_WINDOW or not plain_utf8(raw):
        return None
    # an earlier '---' line would have closed the front matter: then it does not match
    fields = _archiver_fields(raw[4:closing + 1].decode("utf-8"))
    published_at_ms = int(m["epoch"])
    if fields is None or not (_EPOCH_MIN_MS <= published_at_ms < _EPOCH_MAX_MS):
        return None
    if url_problem(fields["from"]) is not None:
        return None  # the general way rejects it
    warnings: list[str] = []
    title, source, url, feed_date_ms = _front_values(fields, warnings)
    return {
        "title": title,
        "source": source,
        "url": url,
        "feed_date_ms": feed_date_ms,
        "published_at_ms": published_at_ms,
        "body_html": raw[m.end():],
        "warnings": warnings,
    }


def parse_post(raw: bytes) -> dict[str, Any]:
    """Raw bytes -> {title, source, url, feed_date_ms, published_at_ms, body_html, warnings};
    body_html is UTF-8 bytes (the form the HTML parser reads fastest)."""
    archiver = _archiver_post(raw)
    return archiver if archiver is not None else parse_post_generally(raw)


def parse_post_generally(raw: bytes) -> dict[str, Any]:
    """parse_post for any post: decode, split, front matter (fast reader, YAML, fallback), epoch,
    title link. parse_post tries _archiver_post first; the two agree wherever it answers."""
    text, warnings = decode_post(raw)
    # no BOM, no other encoding, no repair, no line-end rewrite: text is raw's UTF-8 reading
    exact = not warnings and b"\r" not in raw
    front, rest = split_post(text)
    fields, fm_warnings = parse_front_matter(front)
    warnings += fm_warnings
    problem = url_problem(fields.get("from"))
    if problem is not None:
        raise Reject("no_url", problem, source=scalar_text(fields.get("author")))
    title, source, url, feed_date_ms = _front_values(fields, warnings)
    published_at_ms, rest, epoch_warnings = parse_epoch_comment(rest)
    warnings += epoch_warnings
    return {
        "title": title,
        "source": source,
        "url": url,
        "feed_date_ms": feed_date_ms,
        "published_at_ms": published_at_ms,
        "body_html": body_utf8(raw, text, strip_title_link(rest), exact),
        "warnings": warnings,
    }
