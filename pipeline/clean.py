"""Clean stage: a post's body HTML -> clean paragraphs, images and related links.

The walk is generic and compiled (pipeline/_walk.pyx: it reads libxml2's nodes through lxml's C
API). Plain bodies (most posts) skip libxml2's parser: the same module lays out the nodes libxml2
would build, and the walk reads those (see "the quick tree" there); libxml2 parses the rest. What
each tag means is in pipeline/html_kinds.py, and what to drop, which boxes hold images
or related links and which text starts a feed footer come from `MarkupRules` (CNA's live in
pipeline/cna/markup.py), precomputed per rules object by `_Plan`.
Parsing never touches the network and never expands entities beyond HTML's own.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from pipeline._walk import Walker
from pipeline.html_kinds import BR, DROPPED, IMAGE_BOX, PLAIN, RELATED_BOX
from pipeline.html_parser import HTML_PARSER, QUICK_TREE_ON

# A DOCTYPE anywhere in a body, with its internal subset ([<!ENTITY …>]): a "]>" inside a quoted
# value or a comment does not end it. Possessive repeats never backtrack, so one match attempt
# costs at most the _DOCTYPE_SPAN characters it may look at; after _DOCTYPE_MISSES attempts that
# found no end, the rest of the body is left as it is (hostile input stays linear in time).
_DOCTYPE_START_RE = re.compile("<!doctype", re.IGNORECASE)
_DOCTYPE_RE = re.compile(
    r"""<!DOCTYPE[^\[>]*+"""
    r"""(?:\[(?:<!--(?:(?!-->).)*+(?:-->|\Z)|"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z)|[^\]"'<]|<)*+\]\s*+)?>""",
    re.IGNORECASE | re.DOTALL)
_DOCTYPE_SPAN = 64 * 1024
_DOCTYPE_MISSES = 8
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG_RE = re.compile(r"</?(?:p|div|br|h[1-6]|li|tr|blockquote|section|article)\b[^>]*>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class MarkupRules:
    """Source-specific knowledge the generic walk needs."""

    drop_classes: frozenset[str] = frozenset()
    image_classes: frozenset[str] = frozenset()
    caption_classes: frozenset[str] = frozenset()
    related_classes: frozenset[str] = frozenset()
    related_link_classes: frozenset[str] = frozenset()
    # a paragraph that is only a link whose text starts with one of these is a related link
    related_link_prefixes: tuple[str, ...] = ()
    footer_prefixes: tuple[str, ...] = ()
    drop_ids_prefixes: tuple[str, ...] = ()


GENERIC_RULES = MarkupRules(
    drop_classes=frozenset({"o-self-promo", "dfp-tag-wrapper", "adsbygoogle", "twitter-tweet",
                            "instagram-media", "fb-post", "fb-video", "sharethis-inline-share-buttons",
                            "t-copyright", "m-interstitial"}),
    image_classes=frozenset(),
    footer_prefixes=("获取更多RSS", "獲取更多RSS"),
    drop_ids_prefixes=("dfp-ad", "innity", "div-gpt-ad"),
)

def parse_html(body: bytes | str) -> tuple[Any | None, list[str]]:
    """Parse body HTML (UTF-8 bytes; a str is encoded first) leniently. Returns (root element or
    None, warnings); None with a warning when libxml2 gave up part-way (its depth and text-size
    limits), so the caller falls back to plain text instead of silently losing the rest."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")  # a lone surrogate is no text: "?"
    if not body or body.isspace():
        return None, []
    # rare (10 of the corpus's bodies, none a DOCTYPE): read it as text. The one-byte test first is
    # a memchr, where the two-byte search costs 4 µs a post
    if b"!" in body and b"<!" in body:
        body = _without_doctype(body)
    try:
        root = etree.fromstring(body, HTML_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None, ["html_truncated"]
    except RecursionError:
        return None, ["html_too_deep"]
    fatal = [e.message for e in HTML_PARSER.error_log if e.level_name == "FATAL"]
    if fatal:
        return None, ["html_too_deep" if any("depth" in m.lower() for m in fatal) else "html_truncated"]
    if root is None:
        return None, []
    for child in root:  # libxml2 puts <body> (after any <head>) right under <html>
        if child.tag == "body":
            return child, []
    return root, []


def _without_doctype(body: bytes) -> bytes:
    """`body` without its DOCTYPEs: an internal subset ([<!ENTITY …>]) is not HTML, and libxml2's
    HTML parser would show its tail as text. Entities are never expanded either way. Matched on
    text (Unicode whitespace); every other byte is kept as it was, undecodable ones included
    (surrogateescape gives them back)."""
    text = body.decode("utf-8", "surrogateescape")
    kept: list[str] = []
    end = misses = 0
    for start in _DOCTYPE_START_RE.finditer(text):
        at = start.start()
        if at < end:  # inside a DOCTYPE already removed
            continue
        m = _DOCTYPE_RE.match(text, at, at + _DOCTYPE_SPAN)
        if m is None:
            misses += 1
            if misses == _DOCTYPE_MISSES:
                break
            continue
        kept.append(text[end:at])
        end = m.end()
    if not kept:
        return body
    kept.append(text[end:])
    return "".join(kept).encode("utf-8", "surrogateescape")


# Per-string decision caches are cleared beyond this size (class strings repeat a lot in feeds,
# but hostile input could make every one unique).
_CACHE_MAX = 4096


class _Plan:
    """What the walk needs from one `MarkupRules`, precomputed, plus per-class-string caches."""

    def __init__(self, rules: MarkupRules) -> None:
        self.rules = rules
        self.special = rules.related_classes | rules.image_classes | rules.drop_classes
        self.check_ids = bool(rules.drop_ids_prefixes)
        self.related_only = rules.related_link_classes or None
        self.actions: dict[str, int] = {}  # class string -> PLAIN / RELATED_BOX / ...
        self.captions: dict[str, bool] = {}  # class string -> holds a caption class
        self.links: dict[str, bool] = {}  # class string -> holds a related-link class

    def action(self, cls: str) -> int:
        classes = frozenset(cls.split())
        rules = self.rules
        if classes.isdisjoint(self.special):
            action = PLAIN
        elif classes & rules.related_classes:
            action = RELATED_BOX
        elif classes & rules.image_classes:
            action = IMAGE_BOX
        else:
            action = DROPPED
        if len(self.actions) >= _CACHE_MAX:
            self.actions.clear()
        self.actions[cls] = action
        return action

    def is_caption(self, cls: str) -> bool:
        found = not frozenset(cls.split()).isdisjoint(self.rules.caption_classes)
        if len(self.captions) >= _CACHE_MAX:
            self.captions.clear()
        self.captions[cls] = found
        return found

    def is_link(self, cls: str, only_classes: frozenset[str]) -> bool:
        found = not frozenset(cls.split()).isdisjoint(only_classes)
        if only_classes is self.rules.related_link_classes:
            if len(self.links) >= _CACHE_MAX:
                self.links.clear()
            self.links[cls] = found
        return found


_PLANS: dict[int, _Plan] = {}


def _plan_for(rules: MarkupRules) -> _Plan:
    plan = _PLANS.get(id(rules))
    if plan is None or plan.rules is not rules:
        plan = _Plan(rules)
        if len(_PLANS) >= 64:
            _PLANS.clear()
        _PLANS[id(rules)] = plan
    return plan


def plain_text_fallback(body_html: str) -> str:
    """Markup the parser refused, as text: block tags become paragraph breaks, other tags go,
    character references are decoded (the standard HTML set only: nothing external)."""
    text = _SCRIPT_RE.sub(" ", body_html)
    text = _BLOCK_TAG_RE.sub(BR, text)
    return html.unescape(_TAG_RE.sub("", text))


def quick_tree_body(body_html: bytes | str) -> bytes | None:
    """The bytes the quick tree is given for `body_html`: UTF-8 bytes (what parse_post gives; not
    a subclass) with DOCTYPEs stripped as parse_html strips them (as text, even inside comments and
    attribute values), so both read the same markup. None when the quick tree is not used: a str,
    or a libxml2 other than the one its tokenizer was written for."""
    if not QUICK_TREE_ON or type(body_html) is not bytes:
        return None
    if b"!" in body_html and b"<!" in body_html:
        return _without_doctype(body_html)
    return body_html


def clean_body(body_html: bytes | str, rules: MarkupRules = GENERIC_RULES, quick: bool = True) -> dict[str, Any]:
    """Body HTML (UTF-8 bytes, as parse_post gives it, or str) -> {paragraphs, images, related,
    warnings}. `quick=False` always goes through libxml2's parser (the quick tree's reference)."""
    walker = Walker(_plan_for(rules))
    body = quick_tree_body(body_html) if quick else None
    if body is None or not walker.walk_quick(body):
        root, warnings = parse_html(body_html)
        walker.warnings.extend(warnings)
        if root is not None:
            walker.walk(root)  # recursion stops at html_kinds.MAX_DEPTH
        elif warnings:  # unparseable markup: keep its text rather than lose the post
            text = body_html.decode("utf-8", "replace") if isinstance(body_html, bytes) else body_html
            walker.emit(plain_text_fallback(text))
    return {"paragraphs": walker.paragraphs, "images": walker.images,
            "related": walker.related, "warnings": walker.warnings}
