"""Clean stage: a post's body HTML -> clean paragraphs, images and related links.

The walk is generic; what to drop, which boxes hold images or related links and
which text starts a feed footer come from `MarkupRules` (CNA's live in pipeline/cna/markup.py).
Parsing never touches the network and never expands entities beyond HTML's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree, html

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
_WS_RE = re.compile(r"[ \t\n\r\f\v\u00a0\u2000-\u200b\u3000\ufeff]+")
# Beyond this depth the walk stops recursing and reads the subtree's text in one go.
MAX_DEPTH = 120


@dataclass(frozen=True)
class MarkupRules:
    """Source-specific knowledge the generic walk needs."""

    drop_classes: frozenset[str] = frozenset()
    image_classes: frozenset[str] = frozenset()
    caption_classes: frozenset[str] = frozenset()
    related_classes: frozenset[str] = frozenset()
    related_title_classes: frozenset[str] = frozenset()
    footer_prefixes: tuple[str, ...] = ()
    drop_ids_prefixes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


GENERIC_RULES = MarkupRules(
    drop_classes=frozenset({"o-self-promo", "dfp-tag-wrapper", "adsbygoogle", "twitter-tweet",
                            "instagram-media", "fb-post", "fb-video", "sharethis-inline-share-buttons"}),
    footer_prefixes=("获取更多RSS", "獲取更多RSS"),
    drop_ids_prefixes=("dfp-ad", "innity", "div-gpt-ad"),
)

_PARSER = html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True,
                          default_doctype=False, collect_ids=False, huge_tree=False)


def normalize_space(text: str) -> str:
    """Collapse whitespace runs (including ideographic and no-break spaces) to one space."""
    return _WS_RE.sub(" ", text).strip()


def parse_html(body: str) -> tuple[Any | None, list[str]]:
    """Parse body HTML leniently. Returns (root element or None, warnings)."""
    if not body.strip():
        return None, []
    try:
        root = html.fragment_fromstring(body, create_parent="div", parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:  # e.g. a body of only markup
        if "Document is empty" in str(exc):
            return None, []
        return None, ["html_truncated"]
    except RecursionError:
        return None, ["html_too_deep"]
    return root, []


class _Walker:
    """Walks one tree, collecting paragraphs, images and related links in document order."""

    def __init__(self, rules: MarkupRules) -> None:
        self.rules = rules
        self.paragraphs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.related: list[dict[str, str | None]] = []
        self.warnings: list[str] = []
        self.stopped = False  # set once the feed footer is reached

    # -- classification -------------------------------------------------
    def _classes(self, el: Any) -> frozenset[str] | None:
        cls = el.get("class")
        return frozenset(cls.split()) if cls else None

    def _dropped_id(self, el: Any) -> bool:
        el_id = el.get("id")
        return bool(el_id and self.rules.drop_ids_prefixes and el_id.startswith(self.rules.drop_ids_prefixes))

    # -- output -----------------------------------------------------------
    def _emit(self, text: str) -> None:
        for line in text.split("\n"):
            line = normalize_space(line)
            if not line:
                continue
            if self.rules.footer_prefixes and line.startswith(self.rules.footer_prefixes):
                self.stopped = True
                return
            self.paragraphs.append(line)

    # -- walk ---------------------------------------------------------------
    def walk(self, el: Any, depth: int = 0) -> None:
        run: list[str] = []
        if el.text:
            run.append(el.text)
        for child in el:
            if self.stopped:
                return
            tag = child.tag
            if not isinstance(tag, str):  # comments, processing instructions
                if child.tail:
                    run.append(child.tail)
                continue
            tag = tag.lower()
            if tag in _SKIP_TAGS or self._handled_box(child):
                pass
            elif tag == "br":
                run.append("\n")
            elif tag == "img":
                self._image(child, None)
            elif tag in _BLOCK_TAGS:
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
        for child in el:
            tag = child.tag
            if isinstance(tag, str):
                tag = tag.lower()
                if tag in _SKIP_TAGS or self._handled_box(child):
                    pass
                elif tag == "br":
                    run.append("\n")
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
        classes = self._classes(el)
        if classes is None:
            return self._dropped_id(el)
        rules = self.rules
        if classes & rules.related_classes:
            self._related_links(el)
            return True
        if classes & rules.image_classes:
            self._image_box(el)
            return True
        if classes & rules.drop_classes:
            return True
        return self._dropped_id(el)

    def _image_box(self, box: Any) -> None:
        caption = None
        for el in box.iter():
            if not isinstance(el.tag, str):
                continue
            classes = self._classes(el)
            if classes and classes & self.rules.caption_classes:
                caption = normalize_space(el.text_content()) or None
                break
        imgs = [el for el in box.iter("img")]
        if not imgs:
            return
        for img in imgs:
            self._image(img, caption)

    def _image(self, img: Any, caption: str | None) -> None:
        url = img.get("src") or img.get("data-src") or img.get("data-original")
        if not url:
            return
        if caption is None:
            caption = normalize_space(img.get("alt") or "") or None
        self.images.append({"url": url.strip(), "caption": caption})

    def _related_links(self, box: Any) -> None:
        for a in box.iter("a"):
            href = a.get("href")
            title = normalize_space(a.text_content())
            if href or title:
                self.related.append({"url": href.strip() if href else None, "title": title or None})


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
        walker._emit(re.sub(r"<[^>]*>", " ", body_html))
    return {"paragraphs": walker.paragraphs, "images": walker.images,
            "related": walker.related, "warnings": walker.warnings}
