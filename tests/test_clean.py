"""Focused checks of the clean stage's walk: the in-line fast paths (plain paragraphs, whitespace
runs, childless elements, cached class decisions, subtree text) must give exactly what the
general walk gives."""

from __future__ import annotations

import pytest
from lxml import etree

from pipeline._walk import element_text as _text
from pipeline.clean import GENERIC_RULES, MarkupRules, clean_body
from pipeline.cna.markup import CNA_RULES
from pipeline.html_kinds import MAX_DEPTH


def out(paragraphs=(), images=(), related=(), warnings=()):
    return {"paragraphs": list(paragraphs), "images": list(images), "related": list(related),
            "warnings": list(warnings)}


def test_paragraph_with_inline_children_and_br():
    html = '<p>One <b>bold</b> two<br>three <a href="x">link</a> </p>'
    assert clean_body(html) == out(["One bold two", "three link"])


def test_glossary_box_dropped_term_kept():
    html = '<p>半導體<span class="dictionary-box">（名詞解釋：晶片）</span>產業<span class="dic-icon"></span>成長</p>'
    assert clean_body(html, CNA_RULES) == out(["半導體產業成長"])


def test_image_box_inside_paragraph():
    html = ('<p>Text <span class="fullPic"><span class="floatImg"><img src=" a.jpg "></span>'
            '<span class="picinfo"> Cap  tion </span></span> more</p>')
    assert clean_body(html, CNA_RULES) == out(["Text more"], [{"url": "a.jpg", "caption": "Cap tion"}])


def test_class_decisions_belong_to_their_rules():
    # the same class string is an image box for CNA and an ordinary div for the generic rules,
    # whichever is seen first
    html = '<div class="fullPic"><img src="a.jpg"><div class="picinfo">Cap</div></div>'
    for _ in range(2):
        assert clean_body(html, GENERIC_RULES) == out(["Cap"], [{"url": "a.jpg", "caption": None}])
        assert clean_body(html, CNA_RULES) == out([], [{"url": "a.jpg", "caption": "Cap"}])
    custom = MarkupRules(drop_classes=frozenset({"fullPic"}))
    assert clean_body(html, custom) == out()


def test_whitespace_only_runs_and_zero_width_spaces():
    html = '<div>\n  <p>a</p>\n \u3000 <p> b\n c </p>\n<p>\u200b\ufeff</p><span> </span>\n</div>'
    assert clean_body(html) == out(["a", "b c"])


def test_related_link_prefix_paragraph():
    html = '<p><a href=" https://x/1 ">延伸閱讀》 Title</a></p><p>延伸閱讀 <a href="y">not a link para</a></p>'
    assert clean_body(html, CNA_RULES) == out(["延伸閱讀 not a link para"],
                                              related=[{"url": "https://x/1", "title": "Title"}])


def test_related_box_and_links_kept_from_dropped_box():
    html = ('<div class="paragraph moreArticle"><div class="moreArticle-title">延伸閱讀</div>'
            '<a class="moreArticle-link autoTag" href="https://a/1"><i class="icon-dot"></i><span>第一</span></a>'
            '<a class="other" href="https://a/2">skip</a></div>'
            '<div class="SubscriptionInner"><a class="insert" href="https://a/3"> 第三 </a><a href="z">no</a></div>'
            '<p>after</p>')
    assert clean_body(html, CNA_RULES) == out(["after"], related=[{"url": "https://a/1", "title": "第一"},
                                                                   {"url": "https://a/3", "title": "第三"}])


def test_small_caption_after_image():
    html = '<div><img src="a.jpg"><small>Photo: X</small>Body</div>'
    assert clean_body(html) == out(["Body"], [{"url": "a.jpg", "caption": "Photo: X"}])


def test_date_stamp_skipped_and_footer_stops_the_walk():
    html = '<p>07/02/2021 - 10:37</p><p>First</p><p>获取更多RSS：</p><p>x</p><img src="late.jpg">'
    assert clean_body(html) == out(["First"])


def test_block_inside_inline_is_inline_and_childless_blocks():
    html = '<p>a<span>b<div>c</div>d</span>e</p><div>f<p>g</p>h</div><div></div><div> </div><h2>T</h2>'
    assert clean_body(html) == out(["abcde", "f", "g", "h", "T"])


def test_dropped_ids():
    html = ('<div><p id="main">kept</p><div id="dfp-ad-1">ad</div><span id="innity-x">ad</span>x'
            '<div id="adslot_2" class="plain">ad</div></div>')
    assert clean_body(html, CNA_RULES) == out(["kept", "x"])
    assert clean_body(html, GENERIC_RULES) == out(["kept", "x", "ad"])


def test_figure_inside_paragraph():
    html = '<p>before<figure><img src="f.jpg"><figcaption>Fig</figcaption></figure>after</p>'
    assert clean_body(html) == out(["before", "after"], [{"url": "f.jpg", "caption": "Fig"}])


@pytest.mark.parametrize("depth", [MAX_DEPTH - 5, MAX_DEPTH + 5])
def test_deep_inline_nesting_keeps_the_depth_guard(depth):
    html = "<p>" + "<span>x" * depth + "</p>"
    result = clean_body(html)
    assert len(result["paragraphs"]) == 1
    # below the guard the text is joined as is; at the guard the rest is read with spaces
    if depth < MAX_DEPTH - 1:
        assert result["paragraphs"] == ["x" * depth]
    else:
        assert " " in result["paragraphs"][0]


def test_subtree_text_matches_itertext():
    el = etree.fromstring("<a>x<!--c-->y<b>z<?pi q?>w<i/>v</b>t<c><d>u</d></c></a>")
    assert _text(el) == "".join(el.itertext()) == "xyzwvtu"
    assert _text(el.find("b/i")) == ""
    assert _text(el.find("c/d")) == "u"


def test_compiled_walk_refuses_a_changed_source(tmp_path) -> None:
    """An edit to pipeline/_walk.pyx after it was compiled makes the import fail with a clear
    message, instead of a build running (and caching) the old walk under the new source's name."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pipeline

    package = Path(pipeline.__file__).resolve().parent
    copy = tmp_path / "pipeline"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "demo_posts"))
    check = [sys.executable, "-c", "import pipeline._walk, sys; sys.stdout.write(pipeline._walk.__file__)"]
    ok = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith(str(copy)), ok.stderr[-2000:]
    with open(copy / "_walk.pyx", "a", encoding="utf-8") as fh:
        fh.write("\n# edited\n")
    stale = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert stale.returncode != 0 and "changed since pipeline._walk was compiled" in stale.stderr


def test_compiled_walk_steps_over_comments_inside_boxes() -> None:
    """Boxes are searched element by element; a comment, PI or entity after the last element of a
    box must not stop (or loop) the search. clean_body's parser drops comments, so this walks a
    tree parsed with them kept, in a child process: a regression would hang, not fail."""
    import subprocess
    import sys

    code = """
from lxml import etree
from pipeline._walk import Walker
from pipeline.clean import _plan_for
from pipeline.cna.markup import CNA_RULES
html = ('<div><div class="fullPic"><img src="a.jpg"><!--c--></div>'
        '<div class="moreArticle"><a class="moreArticle-link" href="/x">X</a><!--c--><?pi x?></div>'
        '<figure><img src="b.jpg"><figcaption>cap</figcaption><!--c--></figure><p>t<!--c--></p></div>')
root = etree.fromstring(html, etree.HTMLParser(remove_comments=False, remove_pis=False))
walker = Walker(_plan_for(CNA_RULES))
walker.walk(root.find("body"))
assert walker.images == [{"url": "a.jpg", "caption": None}, {"url": "b.jpg", "caption": "cap"}], walker.images
assert walker.related == [{"url": "/x", "title": "X"}], walker.related
assert walker.paragraphs == ["t"], walker.paragraphs
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_compiled_walk_refuses_none() -> None:
    from pipeline._walk import Walker, element_text
    from pipeline.clean import _plan_for

    with pytest.raises(TypeError):
        Walker(_plan_for(GENERIC_RULES)).walk(None)
    with pytest.raises(TypeError):
        element_text(None)


def test_paragraph_whitespace_is_what_str_split_calls_whitespace() -> None:
    """The walk's whitespace test (a fast path before str.split) agrees with str.split for every
    code point: whitespace and zero-width spaces separate words, anything else is kept."""
    from pipeline._walk import Walker as _Walker
    from pipeline.clean import _plan_for

    walker = _Walker(_plan_for(GENERIC_RULES))
    points = list(range(1, 0x3100)) + [0x200B, 0xFEFF, 0xFFFD, 0x1F600, 0x10FFFF]
    for c in points:
        walker.paragraphs.clear()
        walker.emit("a" + chr(c) + "b")
        expected = "a b" if chr(c).isspace() or c in (0x200B, 0xFEFF) else "a" + chr(c) + "b"
        assert walker.paragraphs == [expected], hex(c)
