"""The quick tree (pipeline/_walk.pyx) against libxml2's parser: whenever it takes a body, the clean
stage's output must be exactly what libxml2's tree gives; whatever it declines goes to libxml2."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import html_parser as hp
from pipeline._walk import Walker
from pipeline.clean import GENERIC_RULES, MarkupRules, _plan_for, clean_body
from pipeline.cna.markup import CNA_RULES
from pipeline.cna.url import is_cna
from pipeline.parse import parse_post


def quick_takes(body: bytes, rules: MarkupRules = GENERIC_RULES) -> bool:
    return Walker(_plan_for(rules)).walk_quick(body)


def assert_same_as_libxml2(body: bytes, rules: MarkupRules = GENERIC_RULES) -> None:
    assert clean_body(body, rules) == clean_body(body, rules, quick=False), body


# A body shaped like CNA's (written for this test): the Markdown title the feed puts first, a photo
# box with its caption, paragraphs with entities and inline markup, a related-links box.
CNA_LIKE = """<!--1600000000000-->
[測試標題 新聞](https://www.cna.com.tw/news/aipl/202010010001.aspx)
------

<div>
<div class="fullPic"><div class="floatImg center"><div class="wrap"><img src="https://img.example/a.jpg?w=1&amp;h=2" alt="說明"></div><div class="picinfo">圖說：示範照片。（中央社）</div></div></div><div></div><div class="paragraph"><p>（中央社記者王小明台北1日電）第一段&nbsp;內容，A&amp;B 公司&#x3001;&quot;引號&quot;。</p><p>第二段 <a href="https://www.cna.com.tw/x?a=1&showinfo=0">連結</a> 與 <strong>粗體</strong><br>換行。</p><p>延伸閱讀</p><p>（譯者：陳正健/核稿：劉學源）1091001</p></div>
</div>
""".encode()


@pytest.mark.parametrize("body", [
    CNA_LIKE,
    "  \n text first<div>x</div> \n tail",  # whitespace before any content is dropped, later kept
    "<p>a &amp; &lt;b&gt; &quot;c&quot; &#39; &#x41;&#12354; &copy; &mdash; & plain &showinfo=1</p>",
    '<a href="?a=1&lang=2&amp;b=&lt;">x</a><img src=\'i.jpg\' data-src=d.jpg class="x y">',
    "<b>a<p>b</p>c</b><p>d<p>e<ul><li>f<li>g</ul><a>1<a>2</a>",  # start tags that close the open one
    "<p>a</span>b</p></div>after",  # end tags of elements that are not open are ignored
    "<div><span>a</div>b<ul><li>c<li>d</ul><span>e<div>f</span>g</div>",  # closes what is open inside; or not
    "<span/>x<img src=a/>y<br/>z<p>a<wbr>b</p>",  # self-closing; <wbr> is not void in libxml2
    "<div>x</div><script>if (a<b) {}</script>y<iframe src=v><p>z</p></iframe>w<style>p{}</style>",
    "a<!-- c -->b<!---->c < d <3 e<",
    '<P CLASS=Big ID="one" class="ignored">Upper</P><o:p>office</o:p><ts>tag</ts>',
    "<figure class=x><img src=f.jpg><figcaption>Fig</figcaption></figure><hr><h2>Head</h2>",
    "<div class='dfp-tag-wrapper'>ad</div><div id='div-gpt-ad-1'>ad</div><p>kept</p>",
    "plain text only, 中文\tand tabs",
], ids=lambda b: (b if isinstance(b, str) else b.decode())[:30])
@pytest.mark.parametrize("rules", [GENERIC_RULES, CNA_RULES], ids=["generic", "cna"])
def test_plain_markup_is_taken_and_matches_libxml2(body: str | bytes, rules: MarkupRules) -> None:
    raw = body.encode() if isinstance(body, str) else body
    assert quick_takes(raw, rules)
    assert_same_as_libxml2(raw, rules)


def test_cna_like_body_gives_its_paragraphs() -> None:
    """Not only equal to libxml2's: the shape the walk needs is there (boxes by class, caption,
    decoded references, <br> split)."""
    out = clean_body(CNA_LIKE, CNA_RULES)
    assert out["images"] == [{"url": "https://img.example/a.jpg?w=1&h=2", "caption": "圖說：示範照片。（中央社）"}]
    assert "（中央社記者王小明台北1日電）第一段 內容，A&B 公司、\"引號\"。" in out["paragraphs"]
    assert "第二段 連結 與 粗體" in out["paragraphs"] and "換行。" in out["paragraphs"]


@pytest.mark.parametrize("body", [
    b"", b"  \n\t ", b"<!-- only a comment -->",
    b"<!DOCTYPE html><p>x</p>", b"<?xml version='1.0'?><p>x</p>",
    b"<p>a\r\nb</p>", b"<p>a\x00b</p>", b"<p>a\x0cb</p>", b"<p>a\x7fb</p>", b"<p>\xc2\x85</p>",
    b"<p>\xff</p>", b"<p>\xed\xa0\x80</p>", b"<p>\xef\xb7\x90</p>", b"\xef\xbb\xbf<p>bom</p>",
    b"<p>&notit; legacy</p>", b"<p>&#128;</p>", b"<p>&#0;</p>", b"<p>&#xD800;</p>", b"<p>&#65</p>",
    b"<p>&nGt; longer than its name</p>", b"  &amp; first",
    b"<meta charset=x><p>x</p>", b"<script>x</script><p>y</p>", b"<p>y</p><script>a<!--b</script>",
    b"<p>y</p><script>never closed", b"<!-->x", b"<!--->x", b"<!-- a --!> b -->c", b"<!-- open",
    b"<p>x</p></body>", b"<html><body>x</body></html>", b"<p class>x</p>",
    b'<p class="x>y</p>', b"<p x='a'y='b'>z</p>", b"<p", b"</ p>x", b"<p>a</p x>b",
    b"<textarea><p>x</p></textarea>", b"<select><option>a</select>", b"<noscript><p>x</p></noscript>",
    b"<" + b"x" * 41 + b">long name",
    b"<div>" * 101 + b"deep",
])
def test_unsure_markup_is_left_to_libxml2(body: bytes) -> None:
    assert not quick_takes(body)
    for rules in (GENERIC_RULES, CNA_RULES):
        assert_same_as_libxml2(body, rules)


def test_libxml2_rules_are_read_off_libxml2() -> None:
    assert hp.tag_flags("img") == hp.TAG_VOID and hp.tag_flags("br") == hp.TAG_VOID
    assert hp.tag_flags("wbr") == 0 and hp.tag_flags("div") == 0 and hp.tag_flags("o:p") == 0
    assert hp.tag_flags("iframe") == hp.TAG_RAW and hp.tag_flags("script") == hp.TAG_RAW | hp.TAG_HEAD
    assert hp.tag_flags("meta") == hp.TAG_VOID | hp.TAG_HEAD and hp.tag_flags("body") == hp.TAG_REFUSED
    assert hp.start_closes("p", "p") and hp.start_closes("div", "p") and hp.start_closes("p", "b")
    assert not hp.start_closes("div", "i") and not hp.start_closes("span", "p") and not hp.start_closes("figure", "p")
    assert hp.end_tag_closes("div", "span") is True and hp.end_tag_closes("span", "div") is False
    assert hp.end_tag_closes("p", "li") is None  # <li> closes <p> first: the probe has neither shape
    assert hp.named_reference(b"amp;") == (b"&", 4) and hp.named_reference(b"showinfo=") == (b"", 0)
    assert hp.named_reference(b"notit;") is None and hp.named_reference(b"nGt;") is None


# -- generated markup ----------------------------------------------------------------------
TAGS = ["p", "div", "span", "a", "b", "i", "em", "strong", "small", "img", "br", "hr", "wbr", "h2", "ul",
        "li", "blockquote", "figure", "figcaption", "table", "tr", "td", "section", "iframe", "script",
        "style", "svg", "path", "o:p", "ts", "font", "center", "input", "source", "meta", "noscript", "title"]
CLASSES = ["", "paragraph", "picinfo", "floatImg", "fullPic", "dfp-tag-wrapper", "wrap center", "x"]
TEXTS = ["文字", "text", " ", "\n", "\t", "  word  ", "&amp;", "&lt;", "&nbsp;", "&#x3001;", "&#12354;",
         "&copy;", "&notit;", "& ", "&x=1", "&#128;", "<", "<3", "延伸閱讀》標題", "\u3000", "\u200b", "a&b"]
ATTRS = ['class="{c}"', "class='{c}'", "class={w}", 'href="https://x/?a=1&amp;b=2"', "href=?a=1&b",
         'src="i.jpg"', "data-src=d.jpg", 'id="div-gpt-ad-9"', "alt", 'CLASS="{c}"', 'title="a > b"']


def _start_tag(rnd: random.Random) -> str:
    attrs = []
    for _ in range(rnd.randrange(3)):
        c = rnd.choice(CLASSES)
        attrs.append(rnd.choice(ATTRS).format(c=c, w=c.split()[0] if c else "w"))
    name = rnd.choice(TAGS)
    end = rnd.choice([">", ">", ">", "/>", " >"])
    return f"<{name.upper() if rnd.random() < 0.1 else name}{''.join(' ' + a for a in attrs)}{end}"


def random_markup(rnd: random.Random, size: int) -> bytes:
    """Markup from realistic pieces, nested or not, closed or not: enough is plain for the quick
    tree to take many of them, enough is not to test its declines."""
    parts: list[str] = []
    open_tags: list[str] = []
    for _ in range(size):
        r = rnd.random()
        if r < 0.35:
            parts.append(rnd.choice(TEXTS))
        elif r < 0.65:
            tag = _start_tag(rnd)
            parts.append(tag)
            name = tag[1:].split(" ")[0].split(">")[0].split("/")[0].lower()
            if name in ("script", "style", "iframe") and rnd.random() < 0.9:
                parts.append(f"{rnd.choice(TEXTS)}<p>x</p></{name}>")  # raw text: markup in it is text
            else:
                open_tags.append(name)
        elif r < 0.9 and open_tags:
            parts.append(f"</{open_tags.pop() if rnd.random() < 0.9 else rnd.choice(TAGS)}>")
        elif r < 0.95:
            parts.append(rnd.choice(["<!-- c -->", "<!---->", "<br>", "</p>", "</div>"]))
        else:
            parts.append(rnd.choice(TEXTS) * 3)
    return "".join(parts).encode("utf-8")


def test_generated_markup_matches_libxml2() -> None:
    rnd = random.Random(20261127)
    taken = 0
    for i in range(3000):
        body = random_markup(rnd, rnd.randrange(1, 40))
        rules = CNA_RULES if i % 2 else GENERIC_RULES
        taken += quick_takes(body, rules)
        assert_same_as_libxml2(body, rules)
    assert taken >= 600, f"the generator reaches the quick tree too rarely: {taken} of 3000"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(1, 60), st.binary(max_size=8), st.integers(0, 10**6))
def test_mutated_markup_matches_libxml2(rnd: random.Random, size: int, junk: bytes, at: int) -> None:
    """Generated markup with a few arbitrary bytes dropped in anywhere (inside tags, names,
    references, UTF-8 sequences)."""
    body = random_markup(rnd, size)
    at %= len(body) + 1
    body = body[:at] + junk + body[at:]
    for rules in (GENERIC_RULES, CNA_RULES):
        assert_same_as_libxml2(body, rules)


def test_corpus_posts_match_libxml2(corpus_dir: Path) -> None:
    """Every real post the quick tree takes gives what libxml2 gives, and it takes almost all."""
    posts = taken = 0
    for dirpath, _dirs, files in os.walk(corpus_dir / "archived"):
        for name in files:
            if not name.endswith(".md"):
                continue
            try:
                parsed = parse_post(Path(dirpath, name).read_bytes())
            except Exception:  # noqa: BLE001 - rejects never reach the clean stage
                continue
            rules = CNA_RULES if is_cna(parsed["url"], parsed["source"]) else GENERIC_RULES
            body = parsed["body_html"]
            posts += 1
            if quick_takes(body, rules):
                taken += 1
                assert clean_body(body, rules) == clean_body(body, rules, quick=False), name
    assert posts > 20000 and taken / posts > 0.95, (posts, taken)


@pytest.mark.parametrize("body", [
    b'<d s="<!DOCTYPE">o', b'<img src="<!doctype>a">', b"<!--<!doctype -->x>", b"<p>a</p><style><!doctype </style>b>",
])
def test_doctype_anywhere_goes_where_doctypes_are_stripped(body: bytes) -> None:
    """parse_html strips DOCTYPEs as text, inside attribute values and comments too; the quick tree
    would read those bytes as they are, so such bodies go to libxml2's path."""
    for rules in (GENERIC_RULES, CNA_RULES):
        assert_same_as_libxml2(body, rules)


_THREADS_LEARNING_TAGS = """
import sys, threading
from pipeline.clean import GENERIC_RULES, clean_body
TAGS = {tags!r}
bodies = [f"<p>a<{{t}}>b<img src=i{{k}}.jpg>c</{{t}}>d<br>e</p>".encode() for k, t in enumerate(TAGS)]
barrier = threading.Barrier(8)
bad = []
def work(k):
    barrier.wait()
    for body in bodies[k::8] + bodies:
        if clean_body(body, GENERIC_RULES) != clean_body(body, GENERIC_RULES, quick=False):
            bad.append(body)
threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(len(bad))
"""


def test_threads_learning_tag_names_at_once(tmp_path: Path) -> None:
    """A Dask worker runs several threads: tags met for the first time by two threads at once keep
    their own names and rules (learning a tag runs libxml2, which lets other threads in). Fresh
    process, so that every tag is new."""
    tags = ["img", "br", "p", "div", "script", "style", "iframe", "li", "table", "td", "figure", "hr", "h2",
            "ul", "span", "a", "b", "i", "em", "small", "strong", "section", "blockquote", "pre", "tr", "video",
            "svg", "form", "input", "button", "meta", "link", "source", "wbr", "u", "sub", "header", "nav",
            "figcaption", "caption", "center", "font", "code", "q", "address", "picture", "label", "time"]
    script = _THREADS_LEARNING_TAGS.format(tags=tags)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


@pytest.mark.parametrize("unit", [b"x</q>", b"x<!---->", b"x</p>"])
def test_text_split_by_comments_or_stray_end_tags_is_one_node(unit: bytes) -> None:
    """Text on both sides of a removed comment or an ignored end tag is one text node, as libxml2
    makes it. As a run of nodes, reading it cost time quadratic in its length (lxml joins the run
    by repeated concatenation), and again for each enclosing link: minutes for one 4 MB post. The
    subprocess's timeout is a hang guard with a wide margin, not a speed goal."""
    body = (b'<div class="moreArticle">' + b'<a class="insert" href=u><span>' * 10
            + unit * ((4 << 20) // len(unit) - 100))
    script = ("import sys; from pipeline.clean import clean_body; from pipeline.cna.markup import CNA_RULES;"
              "from pipeline._walk import Walker; from pipeline.clean import _plan_for;"
              "body = sys.stdin.buffer.read(); assert Walker(_plan_for(CNA_RULES)).walk_quick(body);"
              "print(clean_body(body, CNA_RULES) == clean_body(body, CNA_RULES, quick=False))")
    done = subprocess.run([sys.executable, "-c", script], input=body, capture_output=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"True"


def test_a_bytes_subclass_goes_to_libxml2() -> None:
    class Body(bytes):
        pass

    assert clean_body(Body(CNA_LIKE), CNA_RULES) == clean_body(CNA_LIKE, CNA_RULES, quick=False)


def test_quick_tree_keeps_every_attribute_the_walk_reads() -> None:
    """The builder stores only the attributes the walk reads: a name the walk starts reading must
    be added to the builder's list too, or it would read None on quick trees."""
    import re

    source = (Path(__file__).resolve().parent.parent / "pipeline" / "_walk.pyx").read_text(encoding="utf-8")
    read = set(re.findall(r'\battribute\(c_\w+, "([\w-]+)"\)', source))
    stored = set(re.findall(r'_ATTR_NAMES\[\d\] = b"([\w-]+)"', source))
    assert read and read == stored, (read, stored)


def test_quick_tree_is_off_with_another_libxml2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its tokenizer rules are libxml2 2.14's: with another libxml2 every body goes to libxml2."""
    import pipeline.clean as clean_mod

    assert clean_mod.quick_tree_body(CNA_LIKE) == CNA_LIKE  # this venv's lxml bundles 2.14
    monkeypatch.setattr(clean_mod, "QUICK_TREE_ON", False)
    assert clean_mod.quick_tree_body(CNA_LIKE) is None
    assert clean_body(CNA_LIKE, CNA_RULES) == clean_body(CNA_LIKE, CNA_RULES, quick=False)
