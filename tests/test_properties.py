"""Property tests: the stages never raise on arbitrary input (parse may Reject, nothing else)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.clean import clean_body
from pipeline.cna.credits import find_credit_block, parse_credit_line
from pipeline.cna.dateline import parse_dateline
from pipeline.cna.markup import CNA_RULES
from pipeline.errors import Reject
from pipeline.parse import (
    decode_post,
    parse_epoch_comment,
    parse_front_matter,
    parse_post,
    split_post,
    strip_title_link,
)
from pipeline.process import process_post
from pipeline.schema import REJECT_REASONS, WARNING_CODES

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards the characters the rules look at.
_SPECIAL = "（）()【】[]：:／/，,；;、。 \n\t\r\u3000編輯譯者核稿编译中央社記者台北日電專電綜合外電報導0123456789<>/\"'=&;-!"
texts = st.text(alphabet=st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=300)
html_fragments = st.lists(st.sampled_from([
    "<p>", "</p>", "<div class='paragraph'>", "</div>", "<br>", "<img src='x.jpg'>", "<a href='u'>", "</a>",
    "<div class='moreArticle'>", "<span>", "</span>", "<small>", "<figure>", "<figcaption>", "<!--", "-->",
    "<script>", "</script>", "&amp;", "&#0;", "&#xD800;", "&e;", "<![CDATA[", "]]>", "<!DOCTYPE x [",
    "]>", "获取更多RSS", "延伸閱讀》", "（中央社記者王一台北1日電）", "（編輯：李二）1091001", "\x00", "\ufffd",
]) | texts, max_size=40).map("".join)


def _check_parse(raw: bytes) -> None:
    try:
        parsed = parse_post(raw)
    except Reject as rej:
        assert rej.reason in REJECT_REASONS
        return
    assert set(parsed["warnings"]) <= set(WARNING_CODES)
    assert isinstance(parsed["url"], str)
    # the body is the UTF-8 encoding of the decoded post's body, whichever way the post was
    # decoded (a slice of the raw bytes when they were clean UTF-8): the text stages, done again
    _front, rest = split_post(decode_post(raw)[0])
    body = strip_title_link(parse_epoch_comment(rest)[1])
    assert parsed["body_html"] == body.encode("utf-8", "replace")


@FAST
@given(st.binary(max_size=2000))
@example(b"\xff\xfe" + "---\nfrom: x\n---\n".encode("utf-16-le"))
@example(b"\xef\xbb\xbf")
@example(b"---\n---\n")
def test_parse_post_arbitrary_bytes(raw: bytes) -> None:
    _check_parse(raw)


@FAST
@given(st.binary(max_size=2000))
def test_decode_post_arbitrary_bytes(raw: bytes) -> None:
    try:
        text, warnings = decode_post(raw)
    except Reject as rej:
        assert rej.reason in ("empty_file", "binary_content")
        return
    assert isinstance(text, str) and "\r" not in text
    assert set(warnings) <= set(WARNING_CODES)


front_lines = st.lists(st.one_of(
    st.tuples(st.sampled_from(["title", "date", "author", "from", "tags", "categories", "layout", "x-y", "a b"]),
              texts).map(lambda kv: f"{kv[0]}: {kv[1]}"),
    texts,
    st.sampled_from(["from: https://www.cna.com.tw/news/aopl/202010010003.aspx", "from: https://e.com/a",
                     "a: &a [1, 2]", "b: *a", "c: !!python/object/apply:os.system ['true']", "date: 2020-10-01",
                     "tags: [ x, y ]", "title: \"a\"b\"", "<<: *a", "? complex", "- item", "%YAML 1.1"]),
), max_size=12)


@FAST
@given(front_lines, html_fragments, st.sampled_from(["", "<!--1601510288000-->\n", "<!--x-->\n", "<!--9" * 3]))
def test_parse_post_arbitrary_front_matter(lines: list[str], body: str, epoch: str) -> None:
    text = "---\n" + "\n".join(lines) + "\n---\n" + epoch + body
    _check_parse(text.encode("utf-8", "surrogatepass"))


@FAST
@given(texts)
def test_parse_front_matter_arbitrary_text(front: str) -> None:
    try:
        fields, warnings = parse_front_matter(front)
    except Reject as rej:
        assert rej.reason == "bad_front_matter"
        return
    assert isinstance(fields, dict) and set(warnings) <= set(WARNING_CODES)


@FAST
@given(html_fragments)
def test_clean_body_arbitrary_html(body: str) -> None:
    for rules in (None, CNA_RULES):
        out = clean_body(body) if rules is None else clean_body(body, rules)
        assert all(isinstance(p, str) and p for p in out["paragraphs"])
        assert set(out["warnings"]) <= set(WARNING_CODES)


@FAST
@given(texts)
def test_credits_never_raise(text: str) -> None:
    block = find_credit_block(text)
    if block is not None:
        assert 0 <= block["start"] <= block["end"] == len(text)
    for c in parse_credit_line(text):
        assert c["role"] in ("translator", "reviewer", "editor", "compiler", "other") and c["name"]


@FAST
@given(texts)
def test_parse_dateline_never_raises(text: str) -> None:
    found = parse_dateline(text)
    if found is not None:
        assert 0 <= found["start"] <= found["end"] <= len(text)


@FAST
@given(st.lists(st.sampled_from(["（", "）", "(", ")", "編輯", "：", "/", "1091001", "中央社", "電", " ", "王一"]),
                max_size=30).map("".join))
def test_credit_and_dateline_on_bracket_soup(text: str) -> None:
    find_credit_block(text)
    parse_credit_line(text)
    parse_dateline(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1500) | front_lines.map(lambda ls: ("---\n" + "\n".join(ls) + "\n---\n<p>x</p>")
                                                   .encode("utf-8", "surrogatepass")))
def test_process_post_never_raises_nor_fails_internally(raw: bytes) -> None:
    kind, row = process_post("p.md", raw)
    assert kind in ("article", "reject")
    if kind == "reject":
        assert row["reason"] in REJECT_REASONS and row["reason"] != "internal_error", row
    else:
        assert set(row["warnings"]) <= set(WARNING_CODES)


def test_alphabet_sanity() -> None:
    assert set(string.digits) <= set(_SPECIAL)
