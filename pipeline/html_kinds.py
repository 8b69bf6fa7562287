"""How the clean walk classes an element by its tag, shared by pipeline/clean.py and its compiled
loop (pipeline/_walk.pyx)."""

from __future__ import annotations

import re

# Tags whose content is never article text.
SKIP_TAGS = frozenset({"script", "style", "noscript", "iframe", "video", "audio", "source", "object",
                       "embed", "svg", "canvas", "form", "input", "button", "select", "textarea",
                       "template", "head", "title", "meta", "link"})
# Tags that end an inline run: their content forms paragraphs of its own.
BLOCK_TAGS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote",
                        "section", "article", "table", "tbody", "thead", "tfoot", "tr", "td", "th",
                        "figure", "figcaption", "header", "footer", "aside", "pre", "dl", "dt", "dd",
                        "hr", "main", "nav", "center", "picture", "body", "html", "address", "details",
                        "summary"})

# Kinds of element: any tag not in KINDS is INLINE; comments, processing instructions and entity
# references are NONSTR. Blocks are the kinds from BLOCK on (`kind >= BLOCK`).
INLINE, NONSTR, SKIP, BREAK, IMG, FIGURE, BLOCK, PARA, HR = range(9)
KINDS: dict[str, int] = {tag: BLOCK for tag in BLOCK_TAGS}
KINDS.update({tag: SKIP for tag in SKIP_TAGS})
KINDS.update({"p": PARA, "hr": HR, "figure": FIGURE, "br": BREAK, "img": IMG})

# What a class attribute makes of its element (decided once per distinct class string); all true,
# so `cache.get(cls) or decide(cls)` works.
PLAIN, RELATED_BOX, IMAGE_BOX, DROPPED = range(1, 5)

# Marks a <br> inside collected text: NUL never survives decoding, so it cannot occur in a post.
BR = "\x00"
# Beyond this depth the walk stops recursing and reads the subtree's text in one go.
MAX_DEPTH = 120
# Feed-date stamps some feeds put before the article ("07/02/2021 - 10:37", "Wed, 20 Jan 2021 02:30:00 GMT").
DATE_STAMP_RE = re.compile(r"^(\d{2}/\d{2}/\d{4} - \d{2}:\d{2}|\w{3}, \d{1,2} \w{3} \d{4} \d{2}:\d{2}(:\d{2})? GMT)$")
