# cython: language_level=3, boundscheck=False, wraparound=False
"""The clean stage's walk, compiled: one pass over libxml2's nodes (or the same structs laid out
by the quick tree, at the end of this file) collecting paragraphs, images and related links.

Walking the tree from Python makes an lxml proxy object, a tag string and attribute lookups for
every element, which cost as much as libxml2's parse itself. Here the walk reads the C nodes
through lxml's public C API (`lxml.includes.etreepublic`) and only makes Python strings of the
text and attributes it keeps. What each element means comes from pipeline/html_kinds.py (its
tag) and from the `_Plan` of the source's `MarkupRules` (its class), both in Python.

Elements are visited in document order; an element's own text comes before its children's, and
its tail after them, as lxml's `.text`, `.tail` and `itertext()` give them.
"""

from cpython.list cimport PyList_GET_SIZE
from cpython.unicode cimport (
    Py_UNICODE_ISSPACE,
    PyUnicode_DATA,
    PyUnicode_DecodeUTF8,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
)
from libc.string cimport strcmp, strcpy, strlen
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


# Kinds of recently met tag names. Both libxml2 and the quick tree keep one copy of each name, so
# the name's address finds its slot; a slot answers only when its copy of the name still matches
# (an address may be reused for another name once a document is freed).
cdef struct _KindSlot:
    const char* name
    char text[16]
    int kind

cdef _KindSlot _kind_slots[64]


cdef inline int kind_of(tree.xmlNode* c_node) except -1:
    """KINDS.get(tag, INLINE); NONSTR for comments, processing instructions and entities."""
    if c_node.type != tree.XML_ELEMENT_NODE:
        return _NONSTR
    if _getNs(c_node) is not NULL:  # "{ns}name" is never in the table
        return _INLINE
    cdef const char* name = <const char*>c_node.name
    cdef _KindSlot* slot = &_kind_slots[(<size_t>name >> 4) & 63]
    if slot.name == name and strcmp(slot.text, name) == 0:
        return slot.kind
    kind = _kinds.get(pyunicode(c_node.name))
    cdef int found = _INLINE if kind is None else <int>kind
    if strlen(name) < 16:
        slot.name = name
        strcpy(slot.text, name)
        slot.kind = found
    return found


cdef inline object attribute(tree.xmlNode* c_node, const char* name):
    """el.get(name): the attribute's value, or None. A value held in one text node (what both
    parsers make) is decoded straight from it; lxml's own lookup copies it first."""
    cdef tree.xmlAttr* c_attr = c_node.properties
    cdef tree.xmlNode* c_text
    while c_attr is not NULL:
        if c_attr.ns is NULL and strcmp(<const char*>c_attr.name, name) == 0:
            c_text = c_attr.children
            if c_text is not NULL and c_text.next is NULL and c_text.type == tree.XML_TEXT_NODE:
                return PyUnicode_DecodeUTF8(<const char*>c_text.content, strlen(<const char*>c_text.content), NULL)
            return attributeValueFromNsName(c_node, NULL, <tree.const_xmlChar*>name)
        c_attr = c_attr.next
    return None


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
    if _normalized(text):  # most paragraphs: one scan, no split and join
        return text
    if "\u200b" in text or "\ufeff" in text:  # zero-width: not whitespace to str.split
        text = text.replace("\u200b", " ").replace("\ufeff", " ")
    return " ".join(text.split())


cdef inline bint _is_space(Py_UCS4 ch) noexcept:
    """Py_UNICODE_ISSPACE (str.split's whitespace) without a function call for the CJK text that
    makes up most paragraphs: Unicode has no whitespace above U+3000."""
    if ch < 0x80:
        return ch == 0x20 or 0x09 <= ch <= 0x0D or 0x1C <= ch <= 0x1F
    if ch > 0x3000:
        return False
    return Py_UNICODE_ISSPACE(ch)


cdef bint _normalized(str text) noexcept:
    """True when normalize() would give `text` back: no whitespace but single spaces between
    words (str.split's whitespace: Py_UNICODE_ISSPACE), no zero-width space or BOM."""
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef Py_UCS4 ch
    cdef bint after_space = True  # a space first would be leading whitespace
    for i in range(n):
        ch = PyUnicode_READ(kind, data, i)
        if ch == 0x20:
            if after_space:
                return False
            after_space = True
        elif ch == 0x200B or ch == 0xFEFF or _is_space(ch):
            return False
        else:
            after_space = False
    return n > 0 and not after_space


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

    def walk_quick(self, bytes body not None) -> bool:
        """Walk body HTML (UTF-8 bytes) through the quick tree (below) when it is plain enough
        for it; False, with nothing walked, when it must go through libxml2's parser."""
        return walk_quick_tree(self, body) == 1

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


# -- the quick tree ------------------------------------------------------------------------
# libxml2's HTML parser costs more than the whole walk (about 40 µs a post on the corpus, 60 % of
# the clean stage): it reads every character, interns every name, allocates every node and keeps
# an error log. Most posts are plain markup: valid UTF-8, tags properly nested, no DOCTYPE or
# odd constructs. For those, the quick builder lays out the same libxml2 nodes that libxml2
# would (one copy of the body, decoded and NUL-terminated in place; nodes from a few blocks) and
# the walk above reads them as it reads libxml2's. Anything it is not sure of makes it decline,
# and the post goes through libxml2 as before. What it must know of libxml2's rules (void tags,
# raw-text tags, which start tags close the open element) it asks pipeline.html_parser, which
# reads them off libxml2 itself. tests/test_quick_tree.py checks it against libxml2 on generated
# markup; scripts/profile_clean.py checks it on a whole corpus.

from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy, memmove, memset, strstr

from pipeline.html_parser import (
    TAG_HEAD,
    TAG_RAW,
    TAG_REFUSED,
    TAG_VOID,
    end_tag_closes,
    named_reference,
    start_closes,
    tag_flags,
)

cdef extern from "string.h":
    void* memmem(const void* haystack, size_t haystacklen, const void* needle, size_t needlelen)

cdef enum:
    _QT_MAX_TAGS = 512  # distinct tag names a process learns; beyond that, posts go to libxml2
    _QT_SLOTS = 2048  # the tag-name hash table (a power of two, above twice _QT_MAX_TAGS)
    _QT_MAX_NAME = 40
    _QT_MAX_DEPTH = 100  # below the walk's MAX_DEPTH and libxml2's own depth limit
    _QT_MAX_BYTES = 4 << 20  # libxml2 (huge_tree off) has text-size limits; big bodies go to it
    _QT_CHUNK = 16384
    _QT_ATTRS = 6

cdef int _F_VOID = TAG_VOID, _F_RAW = TAG_RAW, _F_REFUSED = TAG_REFUSED, _F_HEAD = TAG_HEAD

# Tag names met so far: id -> name (kept alive in _tag_name_objects), length, flags; a hash table
# of ids by name; what a start tag does to the open element, by (new id, open id); and what an end
# tag does to an element open inside the one it names, by (end id, open id). In both tables: 0 not
# asked yet, 1 no (goes inside it / the end tag is ignored), 2 yes (closes it / closes both),
# 3 unknown (the post goes to libxml2).
cdef list _tag_name_objects = []
cdef const char* _tag_names[_QT_MAX_TAGS]
cdef int _tag_lengths[_QT_MAX_TAGS]
cdef int _tag_flags[_QT_MAX_TAGS]
cdef int _tag_slots[_QT_SLOTS]
cdef int _tag_count = 0
cdef unsigned char _closes[_QT_MAX_TAGS * _QT_MAX_TAGS]
cdef unsigned char _end_closes[_QT_MAX_TAGS * _QT_MAX_TAGS]

# The attributes the walk reads (every `attribute(node, "…")` above; a test keeps the two lists
# equal); others are skipped without being decoded.
cdef const char* _ATTR_NAMES[_QT_ATTRS]
_ATTR_NAMES[0] = b"class"
_ATTR_NAMES[1] = b"id"
_ATTR_NAMES[2] = b"src"
_ATTR_NAMES[3] = b"data-src"
_ATTR_NAMES[4] = b"data-original"
_ATTR_NAMES[5] = b"href"
cdef int _ATTR_LENGTHS[_QT_ATTRS]
for _i in range(_QT_ATTRS):
    _ATTR_LENGTHS[_i] = strlen(_ATTR_NAMES[_i])

# byte classes
cdef enum:
    _C_NAME = 1  # a tag or attribute name's byte: ASCII letter, digit, ':', '_', '.', '-'
    _C_SPACE = 2  # HTML's whitespace as the builder admits it (no CR or form feed)
    _C_ALNUM = 4
    _C_BAD_UNQUOTED = 8  # an unquoted attribute value with it goes to libxml2
    _C_REFUSED = 16  # an ASCII byte the builder leaves to libxml2: controls, DEL
cdef unsigned char _byte_class[256]


cdef void _init_byte_classes() noexcept:
    cdef int c
    memset(_byte_class, 0, sizeof(_byte_class))
    for c in range(128):
        if (ord("a") <= c <= ord("z")) or (ord("A") <= c <= ord("Z")) or (ord("0") <= c <= ord("9")):
            _byte_class[c] |= _C_NAME | _C_ALNUM
        if c < 0x20 or c == 0x7F:
            _byte_class[c] |= _C_REFUSED
    for c in b":_.-":
        _byte_class[c] |= _C_NAME
    for c in b" \t\n":
        _byte_class[c] = _C_SPACE  # "=", not "|=": tab and newline are controls the builder admits
    for c in b"\"'<`":
        _byte_class[c] |= _C_BAD_UNQUOTED


_init_byte_classes()


cdef bint _plain_text(const unsigned char* s, size_t n) noexcept:
    """Valid UTF-8 without NUL, controls (tab and newline aside), DEL, C1 controls, surrogates or
    noncharacters, and no byte-order mark in front: what libxml2 reads as it is."""
    cdef size_t i = 0
    cdef unsigned int c, cp
    if n >= 3 and s[0] == 0xEF and s[1] == 0xBB and s[2] == 0xBF:
        return False
    while i < n:
        c = s[i]
        if c < 0x80:
            if _byte_class[c] & _C_REFUSED:
                return False
            i += 1
        elif 0xC2 <= c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            if c == 0xC2 and s[i + 1] < 0xA0:  # C1 controls U+0080-U+009F
                return False
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)
            if cp < 0x800 or 0xD800 <= cp <= 0xDFFF or 0xFDD0 <= cp <= 0xFDEF or cp >= 0xFFFE:
                return False
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if (i + 3 >= n or (s[i + 1] & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80):
                return False
            cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F)
            if cp < 0x10000 or cp > 0x10FFFF or (cp & 0xFFFE) == 0xFFFE:
                return False
            i += 4
        else:
            return False
    return True


def plain_utf8(bytes data not None) -> bool:
    """`data` is valid UTF-8 without NUL, other controls than tab and newline (CR included), DEL,
    C1 controls, surrogates or noncharacters, and opens with no byte-order mark: one C pass.
    Two callers rely on all of that: the quick tree (what libxml2 reads as it is) and
    parse._archiver_post (what decode_post would pass unchanged: no CR, BOM or control to
    repair). Loosening it for one breaks the other."""
    return _plain_text(<const unsigned char*><const char*>data, len(data))


cdef int _tag_slot(const char* name, int length) noexcept:
    """The hash-table slot that holds `name`, or the free slot where it would go."""
    cdef unsigned int h = 2166136261
    cdef int i, slot, tag
    for i in range(length):
        h = (h ^ <unsigned char>name[i]) * 16777619
    slot = h & (_QT_SLOTS - 1)
    while _tag_slots[slot]:
        tag = _tag_slots[slot] - 1
        if _tag_lengths[tag] == length and memcmp(_tag_names[tag], name, length) == 0:
            return slot
        slot = (slot + 1) & (_QT_SLOTS - 1)
    return slot


cdef int _tag_id(const char* name, int length) except -2:
    """The id of a lower-case tag name (learning its flags from libxml2 the first time), or -1
    when the table is full."""
    global _tag_count
    cdef int slot = _tag_slot(name, length), tag, flags
    if _tag_slots[slot]:
        return _tag_slots[slot] - 1
    if _tag_count >= _QT_MAX_TAGS:
        return -1
    name_object = name[:length]
    # libxml2's probe lets other threads run (a Dask worker has several): the slot and the id are
    # taken only afterwards, with no Python code in between, so no two names share an id
    flags = tag_flags(name_object.decode("ascii"))
    slot = _tag_slot(name, length)
    if _tag_slots[slot]:  # another thread learned it meanwhile
        return _tag_slots[slot] - 1
    if _tag_count >= _QT_MAX_TAGS:
        return -1
    tag = _tag_count
    _tag_name_objects.append(name_object)
    _tag_flags[tag] = flags
    _tag_names[tag] = <const char*>name_object
    _tag_lengths[tag] = length
    _tag_slots[slot] = tag + 1
    _tag_count += 1
    return tag


cdef int _probed(unsigned char* table, object probe, int a, int b) except -1:
    """What `probe` (start_closes or end_tag_closes: True, False or None for two tag names)
    answers for tags a and b, asked once and kept in `table`: 1 False, 2 True, 3 None."""
    cdef unsigned char* known = &table[a * _QT_MAX_TAGS + b]
    if known[0] == 0:
        answer = probe((<bytes>_tag_name_objects[a]).decode("ascii"), (<bytes>_tag_name_objects[b]).decode("ascii"))
        known[0] = 3 if answer is None else 2 if answer else 1
    return known[0]


cdef struct _Builder:
    char* buf  # the body's bytes, a private copy, NUL after the last
    size_t n
    char* block  # the current node block; its first word points to the previous block
    size_t used
    size_t size
    tree.xmlNode* stack[_QT_MAX_DEPTH + 1]  # open elements; [0] is <body>
    int ids[_QT_MAX_DEPTH + 1]
    int depth
    bint prolog  # nothing in the body yet: libxml2 drops whitespace there
    tree.xmlNode* last_text  # the text node made last, and where its text ends
    char* last_text_end


cdef void* _alloc(_Builder* b, size_t size) except NULL:
    """Zeroed memory for a node, from the builder's blocks (all freed by _free_blocks)."""
    cdef char* block
    cdef size_t block_size
    size = (size + 7) & ~(<size_t>7)
    if b.block is NULL or b.used + size > b.size:
        block_size = _QT_CHUNK if size + 8 <= _QT_CHUNK else size + 8
        block = <char*>malloc(block_size)
        if block is NULL:
            raise MemoryError()
        (<void**>block)[0] = b.block
        b.block = block
        b.used = 8
        b.size = block_size
    cdef void* memory = b.block + b.used
    b.used += size
    memset(memory, 0, size)
    return memory


cdef void _free_blocks(_Builder* b) noexcept:
    cdef char* block = b.block
    cdef char* previous
    while block is not NULL:
        previous = <char*>(<void**>block)[0]
        free(block)
        block = previous
    b.block = NULL


cdef inline void _append(tree.xmlNode* parent, tree.xmlNode* node) noexcept:
    node.parent = parent
    if parent.last is NULL:
        parent.children = node
    else:
        parent.last.next = node
        node.prev = parent.last
    parent.last = node


cdef tree.xmlNode* _new_text(_Builder* b, char* content) except NULL:
    cdef tree.xmlNode* node = <tree.xmlNode*>_alloc(b, sizeof(tree.xmlNode))
    node.type = tree.XML_TEXT_NODE
    node.name = <tree.const_xmlChar*>b"text"
    node.content = <tree.xmlChar*>content
    return node


cdef Py_ssize_t _decode_references(char* s, Py_ssize_t n) except -2:
    """Character references in s[:n] decoded in place; the new length, or -1 for a reference the
    builder leaves to libxml2."""
    cdef Py_ssize_t r = 0, w = 0, k, used, digits
    cdef unsigned int cp
    cdef bint hex_digits
    cdef unsigned char c
    while r < n:
        if s[r] != c'&':
            s[w] = s[r]
            w += 1
            r += 1
            continue
        c = s[r + 1] if r + 1 < n else 0
        if c == c'#':
            k = r + 2
            hex_digits = k < n and (s[k] == c'x' or s[k] == c'X')
            if hex_digits:
                k += 1
            cp = 0
            digits = 0
            while k < n and digits <= 8:
                c = s[k]
                if c'0' <= c <= c'9':
                    cp = cp * (16 if hex_digits else 10) + (c - c'0')
                elif hex_digits and (c'a' <= (c | 0x20) <= c'f'):
                    cp = cp * 16 + ((c | 0x20) - c'a' + 10)
                else:
                    break
                digits += 1
                k += 1
            if digits == 0 or digits > 8 or k >= n or s[k] != c';':
                return -1
            if not (cp == 9 or cp == 10 or 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xD7FF
                    or (0xE000 <= cp <= 0x10FFFF and not 0xFDD0 <= cp <= 0xFDEF and (cp & 0xFFFE) != 0xFFFE)):
                return -1
            if cp < 0x80:
                s[w] = <char>cp
                w += 1
            elif cp < 0x800:
                s[w] = <char>(0xC0 | (cp >> 6))
                s[w + 1] = <char>(0x80 | (cp & 0x3F))
                w += 2
            elif cp < 0x10000:
                s[w] = <char>(0xE0 | (cp >> 12))
                s[w + 1] = <char>(0x80 | ((cp >> 6) & 0x3F))
                s[w + 2] = <char>(0x80 | (cp & 0x3F))
                w += 3
            else:
                s[w] = <char>(0xF0 | (cp >> 18))
                s[w + 1] = <char>(0x80 | ((cp >> 12) & 0x3F))
                s[w + 2] = <char>(0x80 | ((cp >> 6) & 0x3F))
                s[w + 3] = <char>(0x80 | (cp & 0x3F))
                w += 4
            r = k + 1
        elif _byte_class[c] & _C_ALNUM:
            k = r + 1
            while k < n and _byte_class[<unsigned char>s[k]] & _C_ALNUM and k - r <= 40:
                k += 1
            found = named_reference(s[r + 1:k + 1 if k < n else n])
            if found is None:
                return -1
            value, used = found
            if used == 0:  # a plain ampersand
                s[w] = c'&'
                w += 1
                r += 1
            else:
                memcpy(s + w, <const char*>(<bytes>value), len(value))
                w += len(value)
                r += 1 + used
        else:
            s[w] = c'&'
            w += 1
            r += 1
    return w


cdef int _add_text(_Builder* b, Py_ssize_t start, Py_ssize_t end) except -1:
    """Text from buf[start:end] (markup, or the body's end, follows) into the open element:
    0, or 1 to decline."""
    cdef char* s = b.buf + start
    cdef Py_ssize_t n = end - start
    cdef tree.xmlNode* parent
    if n <= 0:
        return 0
    if memchr(s, c'&', n) is not NULL:
        if b.prolog:
            return 1
        n = _decode_references(s, n)
        if n < 0:
            return 1
    if b.prolog:
        while n and _byte_class[<unsigned char>s[0]] & _C_SPACE:
            s += 1
            n -= 1
        if n == 0:
            return 0
        b.prolog = False
    parent = b.stack[b.depth]
    if parent.last is not NULL and parent.last is b.last_text:
        # text right after text (a comment or an ignored end tag between): one node, as libxml2
        # makes it; lxml joins a run of text nodes by repeated concatenation (quadratic)
        memmove(b.last_text_end, s, n)
        b.last_text_end += n
        b.last_text_end[0] = 0
        return 0
    s[n] = 0
    b.last_text = _new_text(b, s)
    b.last_text_end = s + n
    _append(parent, b.last_text)
    return 0


cdef inline Py_ssize_t _skip_space(const char* buf, Py_ssize_t j) noexcept:
    while _byte_class[<unsigned char>buf[j]] & _C_SPACE:
        j += 1
    return j


cdef Py_ssize_t _start_tag(_Builder* b, Py_ssize_t i) except -2:
    """The start tag at buf[i] ("<" and a letter): its element added; returns where parsing
    goes on, or -1 to decline."""
    cdef char* buf = b.buf
    cdef Py_ssize_t j = i + 1, k, value_start, value_end, name_length
    cdef Py_ssize_t starts[_QT_ATTRS]
    cdef Py_ssize_t ends[_QT_ATTRS]
    cdef int order[_QT_ATTRS]
    cdef int count = 0, seen = 0, which, tag, flags, a
    cdef bint self_closing = False, has_value
    cdef unsigned char c, quote
    cdef const char* found
    cdef tree.xmlNode* element
    cdef tree.xmlAttr* attr
    cdef tree.xmlAttr* last_attr = NULL
    while _byte_class[<unsigned char>buf[j]] & _C_NAME:
        if c'A' <= buf[j] <= c'Z':
            buf[j] = buf[j] | 0x20
        j += 1
    name_length = j - i - 1
    c = buf[j]
    if name_length > _QT_MAX_NAME or not (c == c'>' or c == c'/' or _byte_class[c] & _C_SPACE):
        return -1
    tag = _tag_id(buf + i + 1, <int>name_length)
    if tag < 0:
        return -1
    flags = _tag_flags[tag]
    if flags & _F_REFUSED or (b.prolog and flags & _F_HEAD):
        return -1
    while True:  # attributes
        j = _skip_space(buf, j)
        c = buf[j]
        if c == c'>':
            j += 1
            break
        if c == c'/':
            if buf[j + 1] != c'>':
                return -1
            self_closing = True
            j += 2
            break
        if not (_byte_class[c] & _C_ALNUM):
            return -1
        k = j
        while _byte_class[<unsigned char>buf[j]] & _C_NAME:
            if c'A' <= buf[j] <= c'Z':
                buf[j] = buf[j] | 0x20
            j += 1
        name_length = j - k
        j = _skip_space(buf, j)
        has_value = buf[j] == c'='
        value_start = value_end = 0
        if has_value:
            j = _skip_space(buf, j + 1)
            quote = buf[j]
            if quote == c'"' or quote == c'\'':
                found = <const char*>memchr(buf + j + 1, quote, b.n - j - 1)
                if found is NULL:
                    return -1
                value_start = j + 1
                value_end = found - buf
                j = value_end + 1
                c = buf[j]
                if not (c == c'>' or c == c'/' or _byte_class[c] & _C_SPACE):
                    return -1
            elif quote == c'>' or quote == 0:
                return -1
            else:
                value_start = j
                while buf[j] and buf[j] != c'>' and not (_byte_class[<unsigned char>buf[j]] & _C_SPACE):
                    if _byte_class[<unsigned char>buf[j]] & _C_BAD_UNQUOTED:
                        return -1
                    j += 1
                if buf[j] == 0:
                    return -1
                value_end = j
        elif not (_byte_class[<unsigned char>buf[j]] & _C_NAME or buf[j] == c'>' or buf[j] == c'/'):
            return -1
        for which in range(_QT_ATTRS):
            if name_length == _ATTR_LENGTHS[which] and memcmp(buf + k, _ATTR_NAMES[which], name_length) == 0:
                if not has_value:
                    return -1
                if not seen & (1 << which):  # libxml2 keeps the first of a repeated attribute
                    seen |= 1 << which
                    starts[count] = value_start
                    ends[count] = value_end
                    order[count] = which
                    count += 1
                break
    b.prolog = False  # a start tag makes the body
    while b.depth:
        a = _probed(_closes, start_closes, tag, b.ids[b.depth])
        if a == 3:
            return -1
        if a == 1:
            break
        b.depth -= 1
    element = <tree.xmlNode*>_alloc(b, sizeof(tree.xmlNode))
    element.type = tree.XML_ELEMENT_NODE
    element.name = <tree.const_xmlChar*>_tag_names[tag]
    _append(b.stack[b.depth], element)
    for a in range(count):  # values are decoded now: the tag's own bytes were needed until here
        value_end = starts[a] + _decode_references(buf + starts[a], ends[a] - starts[a])
        if value_end < starts[a]:
            return -1
        buf[value_end] = 0
        attr = <tree.xmlAttr*>_alloc(b, sizeof(tree.xmlAttr))
        attr.type = tree.XML_ATTRIBUTE_NODE
        attr.name = <tree.const_xmlChar*>_ATTR_NAMES[order[a]]
        attr.parent = element
        attr.children = _new_text(b, buf + starts[a])
        attr.children.parent = <tree.xmlNode*>attr
        attr.last = attr.children
        if last_attr is NULL:
            element.properties = attr
        else:
            last_attr.next = attr
            attr.prev = last_attr
        last_attr = attr
    if flags & _F_RAW:  # text up to its end tag, taken as it is
        if self_closing:
            return -1
        k = j
        while True:
            found = strstr(buf + k, "</")
            if found is NULL:
                return -1
            k = found - buf
            if k + 2 + _tag_lengths[tag] > <Py_ssize_t>b.n:
                return -1
            if (_byte_class[<unsigned char>buf[k + 2 + _tag_lengths[tag]]] & _C_SPACE
                    or buf[k + 2 + _tag_lengths[tag]] == c'>' or buf[k + 2 + _tag_lengths[tag]] == c'/'):
                if _same_name_folded(buf + k + 2, _tag_names[tag], _tag_lengths[tag]):
                    break
            k += 2
        if memmem(buf + j, k - j, b"<!--", 4) is not NULL:  # script's escaped states
            return -1
        value_end = _skip_space(buf, k + 2 + _tag_lengths[tag])
        if buf[value_end] != c'>':
            return -1
        if k > j:
            buf[k] = 0
            _append(element, _new_text(b, buf + j))
        return value_end + 1
    if not (flags & _F_VOID or self_closing):
        if b.depth >= _QT_MAX_DEPTH:
            return -1
        b.depth += 1
        b.stack[b.depth] = element
        b.ids[b.depth] = tag
    return j


cdef bint _same_name_folded(const char* s, const char* lower, int n) noexcept:
    cdef int i
    for i in range(n):
        if (s[i] | 0x20 if c'A' <= s[i] <= c'Z' else s[i]) != lower[i]:
            return False
    return True


cdef Py_ssize_t _end_tag(_Builder* b, Py_ssize_t i) except -2:
    """The end tag at buf[i] ("</" and a letter): closes the open element it names, and the
    elements open inside it unless one of them makes libxml2 ignore the end tag; an end tag of an
    element that is not open is ignored. Returns where parsing goes on, or -1 to decline."""
    cdef char* buf = b.buf
    cdef Py_ssize_t j = i + 2
    cdef int tag, d, k, effect
    while _byte_class[<unsigned char>buf[j]] & _C_NAME:
        if c'A' <= buf[j] <= c'Z':
            buf[j] = buf[j] | 0x20
        j += 1
    if j - i - 2 > _QT_MAX_NAME:
        return -1
    tag = _tag_id(buf + i + 2, <int>(j - i - 2))
    j = _skip_space(buf, j)
    if tag < 0 or buf[j] != c'>' or _tag_flags[tag] & _F_REFUSED:
        return -1
    d = b.depth
    while d and b.ids[d] != tag:
        d -= 1
    if d:
        for k in range(d + 1, b.depth + 1):
            effect = _probed(_end_closes, end_tag_closes, tag, b.ids[k])
            if effect == 3:
                return -1
            if effect == 1:
                return j + 1
        b.depth = d - 1
    return j + 1


cdef int _build(_Builder* b) except -1:
    """The body's nodes under b.stack[0]: 0, or 1 to decline."""
    cdef char* buf = b.buf
    cdef Py_ssize_t pos = 0, text_start = 0, i, n = b.n
    cdef const char* found
    cdef unsigned char c
    while True:
        found = <const char*>memchr(buf + pos, c'<', n - pos)
        if found is NULL:
            return _add_text(b, text_start, n)
        i = found - buf
        c = buf[i + 1]
        if _byte_class[c] & _C_ALNUM and not (c'0' <= c <= c'9'):
            if _add_text(b, text_start, i):
                return 1
            pos = _start_tag(b, i)
        elif c == c'/':
            c = buf[i + 2]
            if not (_byte_class[c] & _C_ALNUM) or c'0' <= c <= c'9':
                return 1
            if _add_text(b, text_start, i):
                return 1
            pos = _end_tag(b, i)
        elif c == c'!':
            if buf[i + 2] != c'-' or buf[i + 3] != c'-' or buf[i + 4] == c'>' or (buf[i + 4] == c'-' and buf[i + 5] == c'>'):
                return 1
            found = strstr(buf + i + 4, "-->")
            if found is NULL or memmem(buf + i + 4, found - buf - i - 4 + 3, b"--!>", 4) is not NULL:
                return 1
            if _add_text(b, text_start, i):
                return 1
            pos = found - buf + 3
        elif c == c'?':
            return 1
        else:  # "<" that starts no markup is text
            pos = i + 1
            continue
        if pos < 0:
            return 1
        text_start = pos


cdef int walk_quick_tree(Walker walker, bytes body) except -1:
    """Build the quick tree of `body` and walk it: 1 when walked, 0 when `body` must go through
    libxml2 (nothing was walked)."""
    cdef _Builder b
    cdef Py_ssize_t n = len(body)
    cdef tree.xmlNode* root
    if n == 0 or n > _QT_MAX_BYTES or not _plain_text(<const unsigned char*><const char*>body, n):
        return 0
    memset(&b, 0, sizeof(b))
    b.buf = <char*>malloc(n + 8)
    if b.buf is NULL:
        raise MemoryError()
    memcpy(b.buf, <const char*>body, n)
    memset(b.buf + n, 0, 8)  # lookahead past the end reads NULs
    b.n = n
    b.prolog = True
    try:
        root = <tree.xmlNode*>_alloc(&b, sizeof(tree.xmlNode))
        root.type = tree.XML_ELEMENT_NODE
        root.name = <tree.const_xmlChar*>b"body"
        b.stack[0] = root
        b.ids[0] = -1
        if _build(&b) or b.prolog:
            return 0
        walker.block(root, 0)
        return 1
    finally:
        _free_blocks(&b)
        free(b.buf)
