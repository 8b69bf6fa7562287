"""Clean stage: a post's body HTML -> clean paragraphs, images and related links.

The walk is generic; what to drop, which boxes hold images or related links and
which text starts a feed footer come from `MarkupRules` (CNA's live in pipeline/cna/markup.py).
Parsing never touches the network and never expands entities beyond HTML's own.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
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


def _text(el: Any) -> str:
    """All the text inside `el` (not its tail) in document order, as "".join(el.itertext()) gives
    it. Python steps beat itertext (an iterwalk underneath) and etree.tostring(method="text")
    (a 4 kB libxml2 buffer per call) on the small boxes, links and captions this is used for."""
    text = el.text
    if not len(el):
        return text or ""
    parts = [text] if text else []
    _collect_text(el, parts)
    return "".join(parts)


def _collect_text(el: Any, parts: list[str]) -> None:
    for child in el:
        if child.tag.__class__ is str:  # comments and processing instructions: only their tail
            text = child.text
            if text:
                parts.append(text)
            if len(child):
                _collect_text(child, parts)
        tail = child.tail
        if tail:
            parts.append(tail)


def parse_html(body: str) -> tuple[Any | None, list[str]]:
    """Parse body HTML leniently. Returns (root element or None, warnings); None with a warning
    when libxml2 gave up part-way (its depth and text-size limits), so the caller falls back to
    plain text instead of silently losing the rest."""
    if not body or body.isspace():
        return None, []
    if body.find("<!", 0, 2048) >= 0 and _DOCTYPE_RE.search(body, 0, 2048):
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
    for child in root:  # libxml2 puts <body> (after any <head>) right under <html>
        if child.tag == "body":
            return child, []
    return root, []


# Kinds of child element, by tag: one dict lookup instead of a chain of set tests per element.
_INLINE, _NONSTR, _SKIP, _BREAK, _IMG, _FIGURE, _BLOCK, _PARA, _HR = range(9)
_KINDS: dict[Any, int] = {tag: _BLOCK for tag in _BLOCK_TAGS}
_KINDS.update({tag: _SKIP for tag in _SKIP_TAGS})
_KINDS.update({"p": _PARA, "hr": _HR, "figure": _FIGURE, "br": _BREAK, "img": _IMG,
               etree.Comment: _NONSTR, etree.ProcessingInstruction: _NONSTR, etree.Entity: _NONSTR})
# What a class attribute makes of its element (decided once per distinct class string).
_PLAIN, _RELATED_BOX, _IMAGE_BOX, _DROPPED = range(1, 5)  # all true: `cache.get(cls) or ...`
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
        self.actions: dict[str, int] = {}  # class string -> _PLAIN / _RELATED_BOX / ...
        self.captions: dict[str, bool] = {}  # class string -> holds a caption class
        self.links: dict[str, bool] = {}  # class string -> holds a related-link class

    def action(self, cls: str) -> int:
        classes = frozenset(cls.split())
        rules = self.rules
        if classes.isdisjoint(self.special):
            action = _PLAIN
        elif classes & rules.related_classes:
            action = _RELATED_BOX
        elif classes & rules.image_classes:
            action = _IMAGE_BOX
        else:
            action = _DROPPED
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


class _Walker:
    """Walks one tree, collecting paragraphs, images and related links in document order."""

    def __init__(self, rules: MarkupRules) -> None:
        plan = _plan_for(rules)
        self.plan = plan
        self.rules = rules
        self.paragraphs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.related: list[dict[str, str | None]] = []
        self.warnings: list[str] = []
        self.stopped = False  # set once the feed footer is reached
        self._check_ids = plan.check_ids
        self._footer = rules.footer_prefixes
        self._related_prefixes = rules.related_link_prefixes

    def _dropped_id(self, el: Any) -> bool:
        el_id = el.get("id")
        return bool(el_id) and el_id.startswith(self.rules.drop_ids_prefixes)

    # -- output -----------------------------------------------------------
    def _emit(self, text: str) -> None:
        """One block's text -> paragraphs: split at <br> (never at source newlines)."""
        if not text or text.isspace():
            return
        paragraphs = self.paragraphs
        footer = self._footer
        for line in text.split(_BR) if _BR in text else (text,):
            # normalize_space, inlined
            if "\u200b" in line or "\ufeff" in line:
                line = line.replace("\u200b", " ").replace("\ufeff", " ")
            line = " ".join(line.split())
            if not line:
                continue
            if footer and line.startswith(footer):
                self.stopped = True
                return
            if not paragraphs and _DATE_STAMP_RE.match(line):
                continue
            paragraphs.append(line)

    # -- walk ---------------------------------------------------------------
    # walk and _inline are the hot loop: per child one tag lookup in _KINDS, one class lookup in
    # the plan's cache, and the common cases (plain paragraphs, whitespace between blocks,
    # childless elements) handled in line rather than through further calls.
    def walk(self, el: Any, depth: int = 0) -> None:
        run: list[str] = []
        skip = None  # a <small> caption box already consumed by the image before it
        text = el.text
        if text:
            run.append(text)
        kinds = _KINDS
        plan = self.plan
        actions = plan.actions
        check_ids = self._check_ids
        id_prefixes = self.rules.drop_ids_prefixes
        footer = self._footer
        paragraphs = self.paragraphs
        emit = self._emit
        for child in el:
            if self.stopped:
                return
            kind = kinds.get(child.tag, _INLINE)
            if kind == _NONSTR:  # comments, processing instructions, entities
                tail = child.tail
                if tail:
                    run.append(tail)
                continue
            cls = child.get("class")
            if kind == _PARA and not cls and not len(child):
                # the common case: a plain paragraph of text
                if run:
                    text = "".join(run)
                    run = []
                    if not text.isspace():
                        emit(text)
                text = child.text
                if text:
                    # emit(text), in line: a text node never holds _BR (NUL), so it is one line
                    if "\u200b" in text or "\ufeff" in text:
                        text = text.replace("\u200b", " ").replace("\ufeff", " ")
                    text = " ".join(text.split())
                    if text:
                        if footer and text.startswith(footer):
                            self.stopped = True
                        elif paragraphs or not _DATE_STAMP_RE.match(text):
                            paragraphs.append(text)
            elif (kind == _SKIP
                  or (cls and (action := actions.get(cls) or plan.action(cls)) != _PLAIN
                      and self._box(child, action))
                  or (check_ids and (el_id := child.get("id")) and el_id.startswith(id_prefixes))):
                pass
            elif kind == _BREAK:
                run.append(_BR)
            elif kind == _IMG:
                caption_el = self._small_caption(child)
                self._image(child, normalize_space(_text(caption_el)) if caption_el is not None else None)
                if caption_el is not None:
                    skip = caption_el
            elif kind == _FIGURE:
                if run:
                    emit("".join(run))
                    run = []
                self._image_box(child, caption_tags=("figcaption",))
            elif skip is not None and child is skip:
                skip = None
            elif kind == _PARA and self._related_prefixes and self._related_paragraph(child):
                pass
            elif kind >= _BLOCK:
                if run:
                    text = "".join(run)
                    run = []
                    if not text.isspace():
                        emit(text)
                if kind == _HR:
                    pass
                elif depth >= MAX_DEPTH:
                    if "html_too_deep" not in self.warnings:
                        self.warnings.append("html_too_deep")
                    emit(" ".join(child.itertext()))
                elif len(child):
                    self.walk(child, depth + 1)
                else:  # a childless block: what walk would make of it
                    text = child.text
                    if text:
                        emit(text)
            elif len(child):
                self._inline(child, run, depth + 1)
            else:  # an inline element holding only text
                text = child.text
                if text:
                    run.append(text)
            tail = child.tail
            if tail:
                run.append(tail)
        if run:
            text = "".join(run)
            if not text.isspace():
                emit(text)

    def _inline(self, el: Any, run: list[str], depth: int) -> None:
        """Text of an inline element, honouring drops, <br> and nested blocks."""
        text = el.text
        if text:
            run.append(text)
        kinds = _KINDS
        plan = self.plan
        actions = plan.actions
        check_ids = self._check_ids
        id_prefixes = self.rules.drop_ids_prefixes
        for child in el:
            kind = kinds.get(child.tag, _INLINE)
            if kind != _NONSTR:
                cls = child.get("class")
                if (kind == _SKIP
                        or (cls and (action := actions.get(cls) or plan.action(cls)) != _PLAIN
                            and self._box(child, action))
                        or (check_ids and (el_id := child.get("id")) and el_id.startswith(id_prefixes))):
                    pass
                elif kind == _BREAK:
                    run.append(_BR)
                elif kind == _IMG:
                    self._image(child, None)
                elif depth >= MAX_DEPTH:
                    run.append(" ".join(child.itertext()))
                elif len(child):
                    self._inline(child, run, depth + 1)
                else:
                    text = child.text
                    if text:
                        run.append(text)
            tail = child.tail
            if tail:
                run.append(tail)

    def _box(self, el: Any, action: int) -> bool:
        """Consume `el`, whose class makes it a related-links box, an image box or a dropped box
        (`action`); always True."""
        if action == _RELATED_BOX:
            self._related_links(el, only_classes=self.plan.related_only)
        elif action == _IMAGE_BOX:
            self._image_box(el)
        elif self.rules.related_link_classes:  # dropped, but its related links are kept
            self._related_links(el, only_classes=self.rules.related_link_classes)
        return True

    def _image_box(self, box: Any, caption_tags: tuple[str, ...] = ()) -> None:
        """An image container: its <img>s share the caption found inside it."""
        caption = None
        plan = self.plan
        captions = plan.captions
        imgs = []
        elements = box.iter(etree.Element)
        for el in elements:
            tag = el.tag
            if tag == "img":
                imgs.append(el)
            cls = el.get("class")
            if (cls and (captions.get(cls) if cls in captions else plan.is_caption(cls))) or tag in caption_tags:
                caption = normalize_space(_text(el)) or None
                break
        for el in elements:  # the rest of the box, after its caption
            if el.tag == "img":
                imgs.append(el)
        images = self.images
        for img in imgs:  # self._image(img, caption), in line
            url = img.get("src") or img.get("data-src") or img.get("data-original")
            if url and (url := url.strip()):
                images.append({"url": url, "caption": caption})

    def _related_paragraph(self, p: Any) -> bool:
        """`<p><a href>延伸閱讀》title</a></p>`: a related link written as a paragraph."""
        if (p.text and p.text.strip()) or len(p) != 1 or p[0].tag != "a" or (p[0].tail and p[0].tail.strip()):
            return False
        text = normalize_space(_text(p[0]))
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
        plan = self.plan
        links = plan.links if only_classes is self.rules.related_link_classes else {}
        related = self.related
        for a in box.iter("a"):
            if only_classes is not None:
                cls = a.get("class")
                if not cls or not (links.get(cls) or (cls not in links and plan.is_link(cls, only_classes))):
                    continue
            href = a.get("href")
            title = _text(a)  # normalize_space, in line:
            if "\u200b" in title or "\ufeff" in title:
                title = title.replace("\u200b", " ").replace("\ufeff", " ")
            title = " ".join(title.split())
            if href or title:
                related.append({"url": href.strip() if href else None, "title": title or None})


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
