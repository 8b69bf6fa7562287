# cython: language_level=3, boundscheck=False, wraparound=False
"""The clean stage's walk, compiled: one pass over libxml2's own nodes collecting paragraphs,
images and related links.

Walking the tree from Python makes an lxml proxy object, a tag string and attribute lookups for
every element, which cost as much as libxml2's parse itself. Here the walk reads the C nodes
through lxml's public C API (`lxml.includes.etreepublic`) and only makes Python strings of the
text and attributes it keeps. What each element means comes from pipeline/html_kinds.py (its
tag) and from the `_Plan` of the source's `MarkupRules` (its class), both in Python.

Elements are visited in document order; an element's own text comes before its children's, and
its tail after them, as lxml's `.text`, `.tail` and `itertext()` give them.
"""

from cpython.list cimport PyList_GET_SIZE
from libc.string cimport strcmp
from lxml.includes cimport tree
from lxml.includes.etreepublic cimport (
    LXML_VERSION_STRING,
    _Document,
    _Element,
    _getNs,
    _isElement,
    attributeValueFromNsName,
    hasChild,
    import_lxml__etree,
    pyunicode,
    tailOf,
    textOf,
)

from pipeline.html_kinds import (
    BLOCK,
    BR,
    BREAK,
    DATE_STAMP_RE,
    FIGURE,
    HR,
    IMAGE_BOX,
    IMG,
    INLINE,
    KINDS,
    MAX_DEPTH,
    NONSTR,
    PARA,
    PLAIN,
    RELATED_BOX,
    SKIP,
)

import hashlib
from pathlib import Path

from lxml import etree

cdef extern from *:
    const char* WALK_SOURCE_SHA256  # setup.py: the SHA-256 of this file when it was compiled

# An editable install keeps this module next to its source: an edit since it was compiled would
# otherwise go unnoticed (and results cached under the new source's fingerprint would be wrong).
_source = Path(__file__).with_name("_walk.pyx")
if _source.is_file() and hashlib.sha256(_source.read_bytes()).hexdigest() != (<bytes>WALK_SOURCE_SHA256).decode():
    raise ImportError(f"{_source} changed since pipeline._walk was compiled: reinstall the project "
                      "(`pip install -e .`; `make dataset` and `make test` do it when the .pyx changes)")

# The walk reads lxml's own C structures, as they were in the lxml it was compiled against.
if etree.__version__ != (<bytes>LXML_VERSION_STRING).decode("ascii"):
    raise ImportError(f"pipeline._walk was compiled against lxml {(<bytes>LXML_VERSION_STRING).decode('ascii')} "
                      f"but lxml {etree.__version__} is installed: reinstall the project "
                      "(`pip install -e .`, or `make` targets, which do it when setup.py or the .pyx change)")
import_lxml__etree()

cdef dict _kinds = KINDS
cdef int _INLINE = INLINE, _NONSTR = NONSTR, _SKIP = SKIP, _BREAK = BREAK, _IMG = IMG
cdef int _FIGURE = FIGURE, _BLOCK = BLOCK, _PARA = PARA, _HR = HR
cdef int _PLAIN = PLAIN, _RELATED_BOX = RELATED_BOX, _IMAGE_BOX = IMAGE_BOX
cdef int _MAX_DEPTH = MAX_DEPTH
cdef str _BR = BR
_date_stamp_match = DATE_STAMP_RE.match
# separators allowed between a related-link prefix and its title
cdef str _TITLE_SEPARATORS = "》>:：／/ "


# -- node helpers ------------------------------------------------------------------------------
cdef inline bint is_tag(tree.xmlNode* c_node, const char* name) noexcept:
    """An element (not a comment, PI or entity) with this tag and no namespace."""
    return (c_node.type == tree.XML_ELEMENT_NODE and _getNs(c_node) is NULL
            and strcmp(<const char*>c_node.name, name) == 0)


cdef inline int kind_of(tree.xmlNode* c_node):
    """KINDS.get(tag, INLINE); NONSTR for comments, processing instructions and entities."""
    if c_node.type != tree.XML_ELEMENT_NODE:
        return _NONSTR
    if _getNs(c_node) is not NULL:  # "{ns}name" is never in the table
        return _INLINE
    kind = _kinds.get(pyunicode(c_node.name))
    return _INLINE if kind is None else <int>kind


cdef inline object attribute(tree.xmlNode* c_node, const char* name):
    """el.get(name): the attribute's value, or None."""
    return attributeValueFromNsName(c_node, NULL, <tree.const_xmlChar*>name)


cdef inline tree.xmlNode* first_child(tree.xmlNode* c_node) noexcept:
    """The first child lxml iterates over (element, comment, PI or entity), or NULL."""
    c_node = c_node.children
    while c_node is not NULL and not _isElement(c_node):
        c_node = c_node.next
    return c_node


cdef inline tree.xmlNode* next_sibling(tree.xmlNode* c_node) noexcept:
    c_node = c_node.next
    while c_node is not NULL and not _isElement(c_node):
        c_node = c_node.next
    return c_node


cdef inline tree.xmlNode* element_at_or_after(tree.xmlNode* c_node) noexcept:
    """`c_node` or the first element (not text, comment, PI or entity) among its next siblings."""
    while c_node is not NULL and c_node.type != tree.XML_ELEMENT_NODE:
        c_node = c_node.next
    return c_node


cdef tree.xmlNode* next_element(tree.xmlNode* c_node, tree.xmlNode* c_top) noexcept:
    """The element after the element `c_node` in document order within `c_top`'s subtree (what
    `top.iter(etree.Element)` yields next), or NULL. Only elements are descended into."""
    cdef tree.xmlNode* c_next = element_at_or_after(c_node.children)
    if c_next is not NULL:
        return c_next
    while c_node is not c_top:  # climb until an ancestor (below c_top) has a next element
        c_next = element_at_or_after(c_node.next)
        if c_next is not NULL:
            return c_next
        c_node = c_node.parent
        if c_node is NULL:
            return NULL
    return NULL


cdef inline int add_text(list parts, tree.xmlNode* c_node) except -1:
    """parts.append(el.text) when the element has text."""
    text = textOf(c_node)
    if text:
        parts.append(text)
    return 0


cdef inline int add_tail(list parts, tree.xmlNode* c_node) except -1:
    """parts.append(el.tail) when the node has a tail."""
    tail = tailOf(c_node)
    if tail:
        parts.append(tail)
    return 0


cdef int collect_text(tree.xmlNode* c_top, list parts) except -1:
    """Text inside `c_top`'s children, with their tails, in document order (iteratively: any
    depth). Comments, PIs and entities give only their tail."""
    cdef tree.xmlNode* c_node = first_child(c_top)
    cdef tree.xmlNode* c_next
    while c_node is not NULL:
        if c_node.type == tree.XML_ELEMENT_NODE:
            add_text(parts, c_node)
            c_next = first_child(c_node)
            if c_next is not NULL:
                c_node = c_next
                continue
        while True:  # the subtree is done: its tail, then the next sibling or a parent's tail
            add_tail(parts, c_node)
            c_next = next_sibling(c_node)
            if c_next is not NULL:
                c_node = c_next
                break
            c_node = c_node.parent
            if c_node is c_top or c_node is NULL:
                return 0
    return 0


cdef str text_inside(tree.xmlNode* c_node):
    """All the text inside an element (not its tail): "".join(el.itertext())."""
    text = textOf(c_node)
    if not hasChild(c_node):
        return text or ""
    cdef list parts = [text] if text else []
    collect_text(c_node, parts)
    return "".join(parts)


cdef str normalize(str text):
    """Whitespace runs (ideographic, no-break and zero-width spaces included) -> one space."""
    if "\u200b" in text or "\ufeff" in text:  # zero-width: not whitespace to str.split
        text = text.replace("\u200b", " ").replace("\ufeff", " ")
    return " ".join(text.split())


def element_text(_Element el not None) -> str:
    """"".join(el.itertext()), as the walk reads it."""
    return text_inside(_node_of(el))


cdef tree.xmlNode* _node_of(_Element el) except NULL:
    if el._c_node is NULL:
        raise ValueError("an lxml element without a node")
    return el._c_node


cdef object image_url(tree.xmlNode* c_img):
    url = attribute(c_img, "src") or attribute(c_img, "data-src") or attribute(c_img, "data-original")
    if url:
        url = url.strip()
    return url or None


# -- the walk ------------------------------------------------------------------------------
cdef class Walker:
    """Walks one tree, collecting paragraphs, images and related links in document order.

    `plan` is the clean stage's `_Plan` for the source's MarkupRules: the rules and per-class
    decision caches.
    """

    cdef public list paragraphs
    cdef public list images
    cdef public list related
    cdef public list warnings
    cdef public bint stopped  # set once the feed footer is reached
    cdef object plan
    cdef dict actions
    cdef dict captions
    cdef dict links
    cdef object related_only
    cdef object related_link_classes
    cdef tuple footer
    cdef tuple related_prefixes
    cdef tuple id_prefixes

    def __init__(self, plan):
        self.plan = plan
        rules = plan.rules
        self.actions = plan.actions
        self.captions = plan.captions
        self.links = plan.links
        self.related_only = plan.related_only
        self.related_link_classes = rules.related_link_classes
        self.footer = tuple(rules.footer_prefixes)
        self.related_prefixes = tuple(rules.related_link_prefixes)
        self.id_prefixes = tuple(rules.drop_ids_prefixes) if plan.check_ids else ()
        self.paragraphs = []
        self.images = []
        self.related = []
        self.warnings = []
        self.stopped = False

    def walk(self, _Element el not None, int depth=0):
        """A block element's children -> paragraphs, images, related links."""
        self.block(_node_of(el), depth)

    cpdef emit(self, str text):
        """One block's text -> paragraphs: split at <br> (never at source newlines)."""
        if not text or text.isspace():
            return
        for line in text.split(_BR) if _BR in text else (text,):
            line = normalize(line)
            if not line:
                continue
            if self.footer and line.startswith(self.footer):
                self.stopped = True
                return
            if not self.paragraphs and _date_stamp_match(line):
                continue
            self.paragraphs.append(line)

    cdef int flush(self, list run) except -1:
        """Emit an inline run's text and empty the run."""
        if PyList_GET_SIZE(run):
            text = "".join(run)
            del run[:]
            if not text.isspace():
                self.emit(text)
        return 0

    cdef bint dropped(self, tree.xmlNode* c_node, int kind, object cls) except -1:
        """True when the element is skipped, consumed as a box (by its class `cls`), or dropped by
        its id."""
        if kind == _SKIP:
            return True
        if cls:
            action = self.actions.get(cls) or self.plan.action(cls)
            if action != _PLAIN:
                self.box(c_node, <int>action)
                return True
        if self.id_prefixes:
            el_id = attribute(c_node, "id")
            if el_id and el_id.startswith(self.id_prefixes):
                return True
        return False

    cdef int block(self, tree.xmlNode* c_el, int depth) except -1:
        cdef list run = []
        cdef tree.xmlNode* c_child = first_child(c_el)
        cdef tree.xmlNode* c_skip = NULL  # a caption box already consumed by the image before it
        cdef int kind
        add_text(run, c_el)
        while c_child is not NULL:
            if self.stopped:
                return 0
            kind = kind_of(c_child)
            if kind == _NONSTR:
                add_tail(run, c_child)
                c_child = next_sibling(c_child)
                continue
            cls = attribute(c_child, "class")
            if kind == _PARA and not cls and not hasChild(c_child):
                # the common case: a plain paragraph of text
                self.flush(run)
                text = textOf(c_child)
                if text:
                    self.paragraph(text)
            elif self.dropped(c_child, kind, cls):
                pass
            elif kind == _BREAK:
                run.append(_BR)
            elif kind == _IMG:
                c_skip = self.image_with_caption(c_child)
            elif kind == _FIGURE:
                self.flush(run)
                self.image_box(c_child, True)
            elif c_skip is not NULL and c_child is c_skip:
                c_skip = NULL
            elif kind == _PARA and self.related_prefixes and self.related_paragraph(c_child):
                pass
            elif kind >= _BLOCK:
                self.flush(run)
                if kind == _HR:
                    pass
                elif depth >= _MAX_DEPTH:
                    if "html_too_deep" not in self.warnings:
                        self.warnings.append("html_too_deep")
                    self.emit(" ".join(iter_text(c_child)))
                elif hasChild(c_child):
                    self.block(c_child, depth + 1)
                else:  # a childless block: what block() would make of it
                    text = textOf(c_child)
                    if text:
                        self.emit(text)
            elif hasChild(c_child):
                self.inline(c_child, run, depth + 1)
            else:  # an inline element holding only text
                add_text(run, c_child)
            add_tail(run, c_child)
            c_child = next_sibling(c_child)
        self.flush(run)
        return 0

    cdef int paragraph(self, str text) except -1:
        """emit() for a text node's text: it never holds BR (NUL), so it is one line."""
        text = normalize(text)
        if text:
            if self.footer and text.startswith(self.footer):
                self.stopped = True
            elif self.paragraphs or not _date_stamp_match(text):
                self.paragraphs.append(text)
        return 0

    cdef int inline(self, tree.xmlNode* c_el, list run, int depth) except -1:
        """Text of an inline element into `run`, honouring drops, <br> and nested blocks."""
        cdef tree.xmlNode* c_child = first_child(c_el)
        cdef int kind
        add_text(run, c_el)
        while c_child is not NULL:
            kind = kind_of(c_child)
            if kind != _NONSTR:
                if self.dropped(c_child, kind, attribute(c_child, "class")):
                    pass
                elif kind == _BREAK:
                    run.append(_BR)
                elif kind == _IMG:
                    self.image(c_child, None)
                elif depth >= _MAX_DEPTH:
                    run.append(" ".join(iter_text(c_child)))
                elif hasChild(c_child):
                    self.inline(c_child, run, depth + 1)
                else:
                    add_text(run, c_child)
            add_tail(run, c_child)
            c_child = next_sibling(c_child)
        return 0

    # -- boxes, images, related links ----------------------------------------------------
    cdef int box(self, tree.xmlNode* c_box, int action) except -1:
        """Consume a box whose class makes it related links, images or a dropped box."""
        if action == _RELATED_BOX:
            self.related_links(c_box, self.related_only)
        elif action == _IMAGE_BOX:
            self.image_box(c_box, False)
        elif self.related_link_classes:  # dropped, but its related links are kept
            self.related_links(c_box, self.related_link_classes)
        return 0

    cdef bint is_caption(self, tree.xmlNode* c_node, bint figure) except -1:
        cls = attribute(c_node, "class")
        if cls:
            found = self.captions.get(cls)
            if found is None:
                found = self.plan.is_caption(cls)
            if found:
                return True
        return figure and is_tag(c_node, "figcaption")

    cdef int image_box(self, tree.xmlNode* c_box, bint figure) except -1:
        """An image container (a <figure> when `figure`): its <img>s, in document order, share
        the first caption found inside it (an element with a caption class, or <figcaption>)."""
        cdef list imgs = []
        cdef tree.xmlNode* c_node = c_box
        cdef bint found = False
        caption = None
        while c_node is not NULL:
            if is_tag(c_node, "img"):
                url = image_url(c_node)
                if url:
                    imgs.append(url)
            if not found and self.is_caption(c_node, figure):
                found = True
                caption = normalize(text_inside(c_node)) or None
            c_node = next_element(c_node, c_box)
        for url in imgs:
            self.images.append({"url": url, "caption": caption})
        return 0

    cdef tree.xmlNode* image_with_caption(self, tree.xmlNode* c_img) except? NULL:
        """An <img> in a block, with a VOA-style caption right after it (a <small>, or a block
        holding only a <small>); returns the caption's node, which the walk then skips."""
        cdef tree.xmlNode* c_next = next_sibling(c_img)
        cdef tree.xmlNode* c_small
        cdef tree.xmlNode* c_caption = NULL
        tail = tailOf(c_img)
        if c_next is not NULL and c_next.type == tree.XML_ELEMENT_NODE and not (tail and tail.strip()):
            if is_tag(c_next, "small"):
                c_caption = c_next
            elif is_tag(c_next, "div") or is_tag(c_next, "p"):
                c_small = first_child(c_next)
                if (c_small is not NULL and next_sibling(c_small) is NULL and is_tag(c_small, "small")
                        and not (textOf(c_next) or "").strip()):
                    c_caption = c_next
        self.image(c_img, normalize(text_inside(c_caption)) if c_caption is not NULL else None)
        return c_caption

    cdef int image(self, tree.xmlNode* c_img, object caption) except -1:
        url = image_url(c_img)
        if url:
            self.images.append({"url": url, "caption": caption or None})
        return 0

    cdef bint related_paragraph(self, tree.xmlNode* c_p) except -1:
        """`<p><a href>延伸閱讀》title</a></p>`: a related link written as a paragraph."""
        cdef tree.xmlNode* c_a = first_child(c_p)
        text = textOf(c_p)
        if (text and text.strip()) or c_a is NULL or next_sibling(c_a) is not NULL or not is_tag(c_a, "a"):
            return False
        tail = tailOf(c_a)
        if tail and tail.strip():
            return False
        text = normalize(text_inside(c_a))
        for prefix in self.related_prefixes:
            if text.startswith(prefix):
                title = text[len(prefix):].lstrip(_TITLE_SEPARATORS)
                self.related.append({"url": (attribute(c_a, "href") or "").strip() or None,
                                     "title": title or None})
                return True
        return False

    cdef int related_links(self, tree.xmlNode* c_box, object only_classes) except -1:
        """Every <a> in the box (the box included), or only those with one of `only_classes`."""
        cdef tree.xmlNode* c_node = c_box
        links = self.links if only_classes is self.related_link_classes else {}
        while c_node is not NULL:
            if is_tag(c_node, "a"):
                keep = True
                if only_classes is not None:
                    cls = attribute(c_node, "class")
                    keep = cls and (links.get(cls) or (cls not in links and self.plan.is_link(cls, only_classes)))
                if keep:
                    href = attribute(c_node, "href")
                    title = normalize(text_inside(c_node))
                    if href or title:
                        self.related.append({"url": href.strip() if href else None, "title": title or None})
            c_node = next_element(c_node, c_box)
        return 0


cdef list iter_text(tree.xmlNode* c_node):
    """list(el.itertext()) for the depth guard: the texts, unjoined."""
    cdef list parts = []
    add_text(parts, c_node)
    collect_text(c_node, parts)
    return parts
