"""parse_post's way for posts exactly as the archiver writes them (`_archiver_post`) against the
general way (`parse_post_generally`): wherever the first answers, the two give the same; where the
general way rejects a post, the first never answers."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from _synthetic_posts import make_post
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import Reject
from pipeline.parse import _archiver_post, parse_post, parse_post_generally

FIXTURES = Path(__file__).parent / "fixtures" / "posts"


def general(raw: bytes) -> dict[str, Any] | tuple[str, str]:
    try:
        return parse_post_generally(raw)
    except Reject as rej:
        return ("reject", rej.reason)


def assert_agree(raw: bytes) -> bool:
    """True when the archiver's way answered (and agreed)."""
    fast = _archiver_post(raw)
    if fast is None:
        return False
    assert fast == general(raw), raw[:300]
    return True


ARCHIVER_POST = (
    '---\nlayout: post\ntitle: "測試 標題"\ndate: 2021-02-07T07:59:22.000Z\nauthor: (臺)中央社CNA\n'
    "from: https://www.cna.com.tw/news/aopl/202102075006.aspx\ntags: [ (臺)中央社CNA ]\n"
    "categories: [ (臺)中央社CNA ]\n---\n<!--1612684762000-->\n"
    "[測試 標題](https://www.cna.com.tw/news/aopl/202102075006.aspx)\n------\n\n"
    "<div><p>（中央社記者王小明台北7日電）內容。</p></div>\n"
).encode()


def test_archiver_post_is_read_the_fast_way() -> None:
    assert assert_agree(ARCHIVER_POST)
    post = parse_post(ARCHIVER_POST)
    assert post["title"] == "測試 標題" and post["source"] == "(臺)中央社CNA"
    assert post["published_at_ms"] == 1612684762000 and post["feed_date_ms"] == 1612684762000
    assert post["body_html"].startswith(b"\n\n<div><p>") and post["warnings"] == []


@pytest.mark.parametrize("old, new", [
    (b'title: "\xe6\xb8\xac', b'title: "  \xe6\xb8\xac'),  # spaces kept in front matter, stripped from the title
    (b'title: "\xe6\xb8\xac\xe8\xa9\xa6 \xe6\xa8\x99\xe9\xa1\x8c"', b'title: ""'),  # no title: a warning
    (b"date: 2021-02-07T07:59:22.000Z", b"date: 2021-02-30T07:59:22.000Z"),  # bad feed date: a warning
])
def test_variants_the_fast_way_still_reads(old: bytes, new: bytes) -> None:
    assert old in ARCHIVER_POST
    assert assert_agree(ARCHIVER_POST.replace(old, new, 1))


@pytest.mark.parametrize("old, new", [
    (b"---\nlayout", b"\xef\xbb\xbf---\nlayout"),  # byte-order mark
    (b"\n<div>", b"\r\n<div>"),  # CR anywhere
    (b"</p>", b"\x01</p>"),  # a control character in the body
    (b"</p>", b"\xc2\x85</p>"),  # a C1 control
    (b"</p>", b"\xff</p>"),  # not UTF-8
    (b"<!--1612684762000-->", b"<!--12-->"),  # an epoch out of range
    (b"<!--1612684762000-->", b"<!-- 1612684762000 -->"),
    (b"author: (", b"author: #("),  # YAML would read it differently
    (b"from: https://www.cna.com.tw", b"from: ftp://www.cna.com.tw"),  # no http(s) URL: rejected
    (b"\n------\n", b"\n"),  # no rule under the title link
    (b"categories: [ (\xe8\x87\xba)\xe4\xb8\xad\xe5\xa4\xae\xe7\xa4\xbeCNA ]\n---\n",
     b"categories: [ (\xe8\x87\xba)\xe4\xb8\xad\xe5\xa4\xae\xe7\xa4\xbeCNA ]\n--- \nx: y\n---\n"),  # '--- ' closes it
])
def test_anything_else_goes_the_general_way(old: bytes, new: bytes) -> None:
    assert old in ARCHIVER_POST
    raw = ARCHIVER_POST.replace(old, new, 1)
    assert _archiver_post(raw) is None
    parse_result = general(raw)
    try:
        assert parse_post(raw) == parse_result
    except Reject as rej:
        assert parse_result == ("reject", rej.reason)


def test_fixture_and_synthetic_posts_agree() -> None:
    taken = 0
    for path in sorted(FIXTURES.glob("*.md")):
        taken += assert_agree(path.read_bytes())
    rng = random.Random(7)
    for n in range(300):
        _rel, text = make_post(rng, n)
        taken += assert_agree(text.encode("utf-8"))
    assert taken > 250


_INSERTS = [b"\r", b"\x00", b"\n", b"---\n", b"\n---\n", b"-->", b"<!--", b" ", b"\t", b"#", b"\"", b"\\",
            "\u3000".encode(), "\u0085".encode(), b"\xff", b"[", b"]", b":", b"\n------\n", b"9" * 16]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 600), st.sampled_from(_INSERTS), st.integers(0, 3)), max_size=3))
def test_mutated_heads_agree(edits: list[tuple[int, bytes, int]]) -> None:
    """Bytes inserted, or bytes dropped, anywhere in the head (and a little past it)."""
    raw = ARCHIVER_POST
    for at, insert, drop in edits:
        at %= len(raw)
        raw = raw[:at] + insert + raw[at + drop:]
    assert_agree(raw)


def test_corpus_posts_agree(corpus_dir: Path) -> None:
    posts = taken = 0
    for dirpath, _dirs, files in os.walk(corpus_dir / "archived"):
        for name in files:
            if name.endswith(".md"):
                posts += 1
                taken += assert_agree(Path(dirpath, name).read_bytes())
    assert posts > 20000 and taken / posts > 0.95, (posts, taken)


def test_a_bytes_subclass_goes_the_general_way() -> None:
    class Raw(bytes):
        pass

    raw = Raw(ARCHIVER_POST)
    assert _archiver_post(raw) is None
    assert parse_post(raw) == parse_post_generally(ARCHIVER_POST)
