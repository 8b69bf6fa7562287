"""The HTML parser the clean stage uses (libxml2's, through lxml), and what the quick tree builder
in pipeline/_walk.pyx asks of it.

The quick builder lays out the tree libxml2 would build for plain bodies without running
libxml2's parser. Its tag rules are never guessed: which tags are void, which hold raw text and
which start and end tags close open elements are read off this very parser, by parsing a small
probe the first time a tag (or pair of tags) is met; the builder keeps the answers for the
process. Its tokenizer rules (character references, comments, whitespace before any content) are
written for libxml2 2.14's HTML5 tokenizer: with another libxml2 the builder is off
(QUICK_TREE_LIBXML2).
"""

from __future__ import annotations

import html.entities
from functools import lru_cache

from lxml import etree

# libxml2's HTML parser: never fetches anything, never reads external entities; huge_tree off
# keeps its own depth and size limits. It is given UTF-8 bytes, its own encoding: a Python str
# costs it a conversion (a third of its time on the corpus), and the encoding is fixed, so no
# <meta charset> or XML declaration in a post can change how the rest is read.
HTML_PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True,
                               default_doctype=False, collect_ids=False, huge_tree=False)

# Tag flags (pipeline/_walk.pyx imports them).
TAG_VOID = 1  # never has children: `<img>x` puts x after it
TAG_RAW = 2  # its content is text up to its end tag (script, style, iframe)
TAG_REFUSED = 4  # the quick builder leaves posts with this tag to libxml2
TAG_HEAD = 8  # libxml2 puts it in <head> when it comes before any body content

# Tags whose handling depends on more than "which open element does it close": document
# structure, forms' option lists, RCDATA/PLAINTEXT content, templates. Rare in posts.
_REFUSED = frozenset({"html", "head", "body", "frameset", "frame", "noscript", "template", "textarea",
                      "title", "xmp", "noembed", "noframes", "plaintext", "select", "option", "optgroup",
                      "base", "basefont", "bgsound", "isindex", "math", "image", "listing", "datalist"})
_HEAD = frozenset({"meta", "link", "style", "script"})


# The libxml2 the quick builder's tokenizer was written for and checked against.
QUICK_TREE_LIBXML2 = (2, 14)
QUICK_TREE_ON = etree.LIBXML_VERSION[:2] == QUICK_TREE_LIBXML2

# Probes have a parser of their own: HTML_PARSER's error log, read by clean.parse_html after a
# parse, stays that parse's even when a probe runs in another thread meanwhile.
_PROBE_PARSER = HTML_PARSER.copy()


def _probe(markup: str) -> etree._Element | None:
    """The <div> libxml2 makes of `markup` (which starts with one), or None."""
    try:
        root = etree.fromstring(markup.encode("utf-8"), _PROBE_PARSER)
    except (etree.LxmlError, ValueError):
        return None
    body = next((child for child in root if child.tag == "body"), None) if root is not None else None
    return body[0] if body is not None and len(body) and body[0].tag == "div" else None


def _only_child(element: etree._Element | None, tag: str) -> etree._Element | None:
    return element[0] if element is not None and len(element) and element[0].tag == tag else None


@lru_cache(maxsize=1024)  # start_closes asks it again for every pair
def tag_flags(name: str) -> int:
    """What libxml2 does with the lower-case tag `name`: TAG_* flags."""
    if name in _REFUSED:
        return TAG_REFUSED
    flags = TAG_HEAD if name in _HEAD else 0
    # "<div><NAME>x</div>": x is NAME's text (an element with content), its tail (void), or
    # NAME's text with the end tag after it (raw text, read up to </NAME>)
    div = _probe(f"<div><{name}>x</div>")
    element = _only_child(div, name)
    if element is None or len(div) != 1 or len(element):
        return TAG_REFUSED
    if element.text == "x" and not element.tail:
        return flags
    if element.text is None and element.tail == "x":
        return flags | TAG_VOID
    if element.text == "x</div>":
        return flags | TAG_RAW
    return TAG_REFUSED


def start_closes(new: str, open_: str) -> bool | None:
    """Does a <new> start tag close the open <open_> it meets (True), or go inside it (False)?
    None when the probe comes out in neither shape (the quick builder then declines)."""
    end = "" if tag_flags(new) & TAG_VOID else f"</{new}>"
    div = _probe(f"<div><{open_}>x<{new}>y{end}</{open_}></div>")
    element = _only_child(div, open_)
    if element is None or element.text != "x":
        return None
    if len(element) == 1 and element[0].tag == new and len(div) == 1:
        return False
    if len(element) == 0 and len(div) == 2 and div[1].tag == new:
        return True
    return None


def end_tag_closes(end: str, open_: str) -> bool | None:
    """Does an </end> tag, met while <open_> is open inside <end>, close both (True) or is it
    ignored (False)? libxml2 ignores it when the element it would close first ranks above it
    (a stray </span> never closes a <div>). None when the probe comes out in neither shape."""
    element = _only_child(_probe(f"<div><{end}><{open_}>x</{end}>y</div>"), end)
    inner = _only_child(element, open_)
    if inner is None or len(element) != 1 or len(inner) or inner.tail:
        return None
    if inner.text == "x" and element.tail == "y":
        return True
    if inner.text == "xy" and not element.tail:
        return False
    return None


# Named character references, as HTML5 lists them (html.entities.html5: "amp;", and the legacy
# "amp" without a semicolon).
_LONGEST_NAME = max(map(len, html.entities.html5))


@lru_cache(maxsize=4096)
def named_reference(name: bytes) -> tuple[bytes, int] | None:
    """`name` follows an "&": a run of ASCII letters and digits and the byte after it. Returns the
    UTF-8 bytes that replace "&" and the first n bytes of `name`, with n; (b"", 0) when the "&" is
    a plain ampersand (no reference's name starts there). None when the quick builder should
    leave the post to libxml2: a reference without its semicolon (HTML5 reads those differently
    in text and in attributes), or one whose value is longer than its name (the builder decodes
    in place)."""
    text = name[:_LONGEST_NAME].decode("latin-1")
    for end in range(len(text), 1, -1):  # HTML5 takes the longest name in its table
        value = html.entities.html5.get(text[:end])
        if value is not None:
            if not text[:end].endswith(";"):
                return None
            encoded = value.encode("utf-8")
            return (encoded, end) if len(encoded) <= end else None
    return b"", 0
