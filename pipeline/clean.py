"""Clean stage: a post's body HTML -> clean paragraphs, images and related links.

The walk is generic; what to drop, which boxes hold images or related links and
which text starts a feed footer come from `MarkupRules` (CNA's live in pipeline/cna/markup.py).
Parsing never touches the network and never expands entities beyond HTML's own.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

# Tags whose content is never article text.
_SKIP_TAGS = frozenset({"script", "style", "noscript", "iframe", "video", "audio", "source", "object",
                        "embed", "svg", "canvas", "form", "input", "button", "select", "textarea",
                        "template", "head", "title", "meta", "link"})
# Tags that end an inline run: their content forms paragraphs of its own.
_BLOCK_TAGS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote",
                         "section", "article", "table", "tbody", "thead", "tfoot", "tr", "td", "th",
                         "figure", "figcaption", "header", "footer", "aside", "pre", "dl", "dt", "dd",
                         "hr", "main", "nav", "center", "picture", "body", "html", "address", "details",
                         "summary"})
_DOCTYPE_RE = re.compile(r"<!DOCTYPE[^\[>]*(\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK_TAG_RE = re.compile(r"</?(?:p|div|br|h[1-6]|li|tr|blockquote|section|article)\b[^>]*>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")
# Marks a <br> inside collected text: NUL never survives decoding, so it cannot occur in a post.
_BR = "\x00"
# Beyond this depth the walk stops recursing and reads the subtree's text in one go.
MAX_DEPTH = 120


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
    extra: dict[str, Any] = field(default_factory=dict)


GENERIC_RULES = MarkupRules(
    drop_classes=frozenset({"o-self-promo", "dfp-tag-wrapper", "adsbygoogle", "twitter-tweet",
                            "instagram-media", "fb-post", "fb-video", "sharethis-inline-share-buttons",
                            "t-copyright", "m-interstitial"}),
    image_classes=frozenset(),
    footer_prefixes=("获取更多RSS", "獲取更多RSS"),
    drop_ids_prefixes=("dfp-ad", "innity", "div-gpt-ad"),
)

# libxml2's HTML parser: never fetches anything, never reads external entities; huge_tree off
# keeps its own depth and size limits.
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True,
                           default_doctype=False, collect_ids=False, huge_tree=False)
# Feed-date stamps some feeds put before the article ("07/02/2021 - 10:37", "Wed, 20 Jan 2021 02:30:00 GMT").
_DATE_STAMP_RE = re.compile(r"^(\d{2}/\d{2}/\d{4} - \d{2}:\d{2}|\w{3}, \d{1,2} \w{3} \d{4} \d{2}:\d{2}(:\d{2})? GMT)$")


def normalize_space(text: str) -> str:
    """Collapse whitespace runs (including ideographic and no-break spaces) to one space."""
    if "\u200b" in text or "\ufeff" in text:  # zero-width: not whitespace to str.split
        text = text.replace("\u200b", " ").replace("\ufeff", " ")
    return " ".join(text.split())


def parse_html(body: str) -> tuple[Any | None, list[str]]:
    """Parse body HTML leniently. Returns (root element or None, warnings); None with a warning
    when libxml2 gave up part-way (its depth and text-size limits), so the caller falls back to
    plain text instead of silently losing the rest."""
    if not body.strip():
        return None, []
    if "<!" in body[:2048] and _DOCTYPE_RE.search(body, 0, 2048):
        # an internal subset ([<!ENTITY …>]) is not HTML: libxml2's HTML parser would show its
        # tail as text. Entities are never expanded either way.
        body = _DOCTYPE_RE.sub("", body, count=1)
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None, ["html_truncated"]
    except RecursionError:
        return None, ["html_too_deep"]
    fatal = [e.message for e in _PARSER.error_log if e.level_name == "FATAL"]
    if fatal:
        return None, ["html_too_deep" if any("depth" in m.lower() for m in fatal) else "html_truncated"]
    if root is None:
        return None, []
    body_el = root.find("body")
    return (body_el if body_el is not None else root), []


class _Walker:
    """Walks one tree, collecting paragraphs, images and related links in document order."""

    def __init__(self, rules: MarkupRules) -> None:
        self.rules = rules
        self.paragraphs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.related: list[dict[str, str | None]] = []
        self.warnings: list[str] = []
        self.stopped = False  # set once the feed footer is reached
        self._special = rules.related_classes | rules.image_classes | rules.drop_classes
        self._check_ids = bool(rules.drop_ids_prefixes)

    # -- classification -------------------------------------------------
    def _classes(self, el: Any) -> frozenset[str] | None:
        cls = el.get("class")
        return frozenset(cls.split()) if cls else None

    def _dropped_id(self, el: Any) -> bool:
        el_id = el.get("id")
        return bool(el_id) and el_id.startswith(self.rules.drop_ids_prefixes)

    # -- output -----------------------------------------------------------
    def _emit(self, text: str) -> None:
        """One block's text -> paragraphs: split at <br> (never at source newlines)."""
        if not text or text.isspace():
            return
        for line in text.split(_BR) if _BR in text else (text,):
            line = normalize_space(line)
            if not line:
                continue
            if self.rules.footer_prefixes and line.startswith(self.rules.footer_prefixes):
                self.stopped = True
                return
            if not self.paragraphs and _DATE_STAMP_RE.match(line):
                continue
            self.paragraphs.append(line)

    # -- walk ---------------------------------------------------------------
    def walk(self, el: Any, depth: int = 0) -> None:
        run: list[str] = []
        skip = None  # a <small> caption box already consumed by the image before it
        if el.text:
            run.append(el.text)
        check_ids = self._check_ids
        for child in el:
            if self.stopped:
                return
            tag = child.tag
            if tag.__class__ is not str:  # comments, processing instructions
                if child.tail:
                    run.append(child.tail)
                continue
            if tag == "p" and not len(child) and not child.get("class"):
                # the common case: a plain paragraph of text
                if run:
                    self._emit("".join(run))
                    run = []
                if child.text:
                    self._emit(child.text)
            elif tag in _SKIP_TAGS or ((child.get("class") or (check_ids and child.get("id")))
                                       and self._handled_box(child)):
                pass
            elif tag == "br":
                run.append(_BR)
            elif tag == "img":
                caption_el = self._small_caption(child)
                self._image(child, normalize_space("".join(caption_el.itertext())) if caption_el is not None else None)
                if caption_el is not None:
                    skip = caption_el
            elif tag == "figure":
                self._emit("".join(run))
                run = []
                self._image_box(child, caption_tags=("figcaption",))
            elif skip is not None and child is skip:
                skip = None
            elif self.rules.related_link_prefixes and tag == "p" and self._related_paragraph(child):
                pass
            elif tag in _BLOCK_TAGS:
                if run:
                    self._emit("".join(run))
                    run = []
                if tag == "hr":
                    pass
                elif depth >= MAX_DEPTH:
                    if "html_too_deep" not in self.warnings:
                        self.warnings.append("html_too_deep")
                    self._emit(" ".join(child.itertext()))
                else:
                    self.walk(child, depth + 1)
            else:
                self._inline(child, run, depth + 1)
            if child.tail:
                run.append(child.tail)
        self._emit("".join(run))

    def _inline(self, el: Any, run: list[str], depth: int) -> None:
        """Text of an inline element, honouring drops, <br> and nested blocks."""
        if el.text:
            run.append(el.text)
        check_ids = self._check_ids
        for child in el:
            tag = child.tag
            if tag.__class__ is str:
                if tag in _SKIP_TAGS or ((child.get("class") or (check_ids and child.get("id")))
                                         and self._handled_box(child)):
                    pass
                elif tag == "br":
                    run.append(_BR)
                elif tag == "img":
                    self._image(child, None)
                elif depth >= MAX_DEPTH:
                    run.append(" ".join(child.itertext()))
                else:
                    self._inline(child, run, depth + 1)
            if child.tail:
                run.append(child.tail)

    def _handled_box(self, el: Any) -> bool:
        """True when `el` is dropped or consumed as an image box / related-links box."""
        cls = el.get("class")
        if not cls:
            return self.rules.drop_ids_prefixes != () and self._dropped_id(el)
        classes = frozenset(cls.split())
        rules = self.rules
        if classes.isdisjoint(self._special):
            return self._dropped_id(el)
        if classes & rules.related_classes:
            self._related_links(el, only_classes=rules.related_link_classes or None)
            return True
        if classes & rules.image_classes:
            self._image_box(el)
            return True
        if classes & rules.drop_classes:
            if rules.related_link_classes:
                self._related_links(el, only_classes=rules.related_link_classes)
            return True
        return self._dropped_id(el)

    def _image_box(self, box: Any, caption_tags: tuple[str, ...] = ()) -> None:
        """An image container: its <img>s share the caption found inside it."""
        caption = None
        for el in box.iter():
            if not isinstance(el.tag, str):
                continue
            classes = self._classes(el)
            if (classes and classes & self.rules.caption_classes) or el.tag in caption_tags:
                caption = normalize_space("".join(el.itertext())) or None
                break
        for img in box.iter("img"):
            self._image(img, caption)

    def _related_paragraph(self, p: Any) -> bool:
        """`<p><a href>延伸閱讀》title</a></p>`: a related link written as a paragraph."""
        if (p.text and p.text.strip()) or len(p) != 1 or p[0].tag != "a" or (p[0].tail and p[0].tail.strip()):
            return False
        text = normalize_space("".join(p[0].itertext()))
        for prefix in self.rules.related_link_prefixes:
            if text.startswith(prefix):
                title = text[len(prefix):].lstrip("》>:：／/ ")
                self.related.append({"url": (p[0].get("href") or "").strip() or None, "title": title or None})
                return True
        return False

    @staticmethod
    def _small_caption(img: Any) -> Any | None:
        """VOA-style caption: the block right after an <img> holding only a <small>."""
        nxt = img.getnext()
        if nxt is None or (img.tail and img.tail.strip()) or not isinstance(nxt.tag, str):
            return None
        if nxt.tag == "small":
            return nxt
        if nxt.tag in ("div", "p") and len(nxt) == 1 and nxt[0].tag == "small" and not (nxt.text or "").strip():
            return nxt
        return None

    def _image(self, img: Any, caption: str | None) -> None:
        url = img.get("src") or img.get("data-src") or img.get("data-original")
        if url and url.strip():
            self.images.append({"url": url.strip(), "caption": caption or None})

    def _related_links(self, box: Any, only_classes: frozenset[str] | None = None) -> None:
        for a in box.iter("a"):
            if only_classes is not None:
                cls = a.get("class")
                if not cls or not (frozenset(cls.split()) & only_classes):
                    continue
            href = a.get("href")
            title = normalize_space("".join(a.itertext()))
            if href or title:
                self.related.append({"url": href.strip() if href else None, "title": title or None})


def plain_text_fallback(body_html: str) -> str:
    """Markup the parser refused, as text: block tags become paragraph breaks, other tags go,
    character references are decoded (the standard HTML set only: nothing external)."""
    text = _SCRIPT_RE.sub(" ", body_html)
    text = _BLOCK_TAG_RE.sub(_BR, text)
    return html.unescape(_TAG_RE.sub("", text))


def clean_body(body_html: str, rules: MarkupRules = GENERIC_RULES) -> dict[str, Any]:
    """Body HTML -> {paragraphs, images, related, warnings}."""
    root, warnings = parse_html(body_html)
    walker = _Walker(rules)
    walker.warnings.extend(warnings)
    if root is not None:
        try:
            walker.walk(root)
        except RecursionError:  # pathological nesting beyond MAX_DEPTH guards
            walker.warnings.append("html_too_deep")
    elif warnings:  # unparseable markup: keep its text rather than lose the post
        walker._emit(plain_text_fallback(body_html))
    return {"paragraphs": walker.paragraphs, "images": walker.images,
            "related": walker.related, "warnings": walker.warnings}
