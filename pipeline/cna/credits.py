"""Credit blocks: ``（譯者：陳正健/核稿：劉學源）1091001`` at the end of a CNA story.

Pure string functions; they never raise.
"""

from __future__ import annotations

import functools
import re

from pipeline.cna.roc import (
    FULLWIDTH_DIGITS,
    ROC_CODE_RE,  # noqa: F401  (re-exported for callers)
)

# Label (as written, whitespace removed) -> role.
ROLE_BY_LABEL: dict[str, str] = {
    "譯者": "translator",
    "译者": "translator",
    "翻譯": "translator",
    "翻译": "translator",
    "核稿": "reviewer",
    "審稿": "reviewer",
    "审稿": "reviewer",
    "編輯": "editor",
    "编辑": "editor",
    "編緝": "editor",  # typo seen in real posts
    "编缉": "editor",
    "實習編輯": "editor",
    "实习编辑": "editor",
    "編譯": "compiler",
    "编译": "compiler",
    "實習編譯": "compiler",
    "实习编译": "compiler",
    # seen but not one of the four roles
    "攝影": "other",
    "摄影": "other",
    "稿件": "other",
    "撰稿": "other",
    "採訪": "other",
    "采访": "other",
    "製作": "other",
    "制作": "other",
    "校對": "other",
    "校对": "other",
}

_WS_CHARS = r" \t\u3000\u00a0"
_WS = rf"[{_WS_CHARS}]"
# A label may be written with spaces inside ("編 輯", "译    者"); longest labels first.
_LABELS = sorted(ROLE_BY_LABEL, key=len, reverse=True)
_LABEL_ALT = "|".join(f"{_WS}*".join(re.escape(ch) for ch in lab) for lab in _LABELS)
# Between role and name: a colon, or a comma/semicolon ("譯者，王一", "編輯；王一"): a label
# followed by one of them is a label, not a name.
_LABEL_END = "[：:﹕，,；;]"
_LABEL_RE = re.compile(rf"({_LABEL_ALT}){_WS}*{_LABEL_END}")
_LABEL_START_RE = re.compile(rf"^{_WS}*(?:{_LABEL_ALT}){_WS}*{_LABEL_END}")
_SEP_RE = re.compile(r"[/／、，,；;﹨∕\\\s\u3000：:﹕|｜]+")
_STRIP_CHARS = " \t\r\n\u3000\u00a0。．.·・-－—─_*＊"
_WS_RE = re.compile(rf"{_WS}+")

# Bare names (no label): 2-5 CJK characters each, 1-4 of them.
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_NAME = rf"[{_CJK}?？·・]{{2,5}}"
_BARE_NAMES_RE = re.compile(
    rf"^{_WS}*{_NAME}(?:{_WS}*[/／、，,；;﹨∕\\{_WS_CHARS}]{_WS}*{_NAME}){{0,3}}{_WS}*$"
)
# What a credit line may contain at all (names, labels, separators).
_CREDITISH_RE = re.compile(rf"^[{_CJK}?？·・A-Za-z /／、，,；;﹨∕\\：:﹕\s\u3000|｜.．-]{{1,80}}$")

_FULLWIDTH_DIGIT_RE = re.compile("[０-９]")
_OPEN = "（(﹙"
_CLOSE = "）)﹚"
# Credit bracket + optional code (+ one stray trailing char) at the very end of a paragraph.
_BLOCK_RE = re.compile(
    r"[（(﹙]([^（()﹙）)﹚]{1,80})[）)﹚]"
    r"[ \t\u3000\u00a0]*(?:[。.][ \t\u3000\u00a0]*)?"
    r"(?P<code>[0-9]{3,9}(?:xx|XX|ｘｘ)?)?"
    r"(?:(?<=[0-9xX])[\\/.。vV])?"
    r"\s*$"
)
# A bare code at the end of a paragraph, after sentence punctuation or at its start.
# Only shapes that look like a ROC date: 1YYMMDD (ROC 100-129) or 9YMMDD/8YMMDD (ROC 80-99).
_BARE_CODE_RE = re.compile(
    r"(?:^|(?<=[。！？!?」』”\"）)…；;.\s]))[ \t\u3000\u00a0]*"
    r"(?P<code>(?:1[0-2][0-9]|[89][0-9])[01][0-9][0-3][0-9])\s*$"
)

# A phone or fax number that happens to look like a code: "洽詢專線 1100101", "電話：(02)1100101",
# "Tel: 1100101". Its label (then spaces, a colon, an area code in brackets) comes right before the
# digits; a Latin label only as a whole word ("Hotel 1100101" names no phone).
_PHONE_LABEL_RE = re.compile(
    r"(?:專線|電話(?:號碼)?|熱線|傳真|分機|手機|专线|电话(?:号码)?|热线|传真|分机|手机"
    r"|(?<![A-Za-z])(?:Tel|TEL|tel|Fax|FAX|fax)\.?)"
    rf"{_WS}*[：:]?{_WS}*(?:[（(]0[0-9]{{1,3}}[）)]{_WS}*)?\Z"
)


def _role(label: str) -> str:
    return ROLE_BY_LABEL.get(_WS_RE.sub("", label), "other")


def _names(chunk: str) -> list[str]:
    out = []
    for part in _SEP_RE.split(chunk):
        name = part.strip(_STRIP_CHARS)
        if name:
            out.append(name)
    return out


@functools.lru_cache(maxsize=4096)
def _parse_credits(inner: str) -> tuple[tuple[str, str], ...]:
    """(role, name) pairs; cached, as the same few credit lines recur in thousands of posts."""
    credits: list[tuple[str, str]] = []
    role = "other"
    pos = 0
    for m in _LABEL_RE.finditer(inner):
        for name in _names(inner[pos : m.start()]):
            credits.append((role, name))
        role = _role(m.group(1))
        pos = m.end()
    for name in _names(inner[pos:]):
        credits.append((role, name))
    return tuple(credits)


def parse_credit_line(inner: str) -> list[dict]:
    """Parse the text inside a credit bracket into ``[{'role', 'name'}, ...]`` in order.

    A bare name inherits the role of the label before it; names before any label get 'other'.
    """
    if not isinstance(inner, str):
        return []
    return [{"role": role, "name": name} for role, name in _parse_credits(inner)]


def _is_credit_line(inner: str, has_code: bool) -> bool:
    if _LABEL_START_RE.match(inner):
        return True
    if not _CREDITISH_RE.match(inner):
        return False
    if _LABEL_RE.search(inner):  # names, then a label: "王一，李二/核稿：張三"
        return True
    return has_code and bool(_BARE_NAMES_RE.match(inner))


# What the last non-space character of a paragraph ending in a block or a code can be (a cheap
# pre-check: most paragraphs end in 。 and skip the regexes).
_CLOSE_SET = frozenset(_CLOSE)
_CODE_END = frozenset("0123456789０１２３４５６７８９xXｘ")  # code digits (ASCII or full-width) or "xx"
_STRAY = frozenset("\\/.。vV")  # one stray character after a code
_BEFORE_STRAY = frozenset("0123456789０１２３４５６７８９xX")
_STOPS = frozenset("。.")  # "（…）。" with no code
_INLINE_WS = frozenset(" \t\u3000\u00a0")
_TAIL = 120  # the block (bracket <= 82 chars + code) or the bare code lies in the last 120 chars
_INNER_MAX = 81  # an opener more than 81 chars before the closing bracket cannot start a block


_MAYBE_LAST = _CLOSE_SET | _CODE_END | _STRAY


def _may_end_in_block(text: str) -> str:
    """The last non-space character of ``text`` when a block or code may end it, else ''."""
    last = text[-1]
    end = len(text)
    if last not in _MAYBE_LAST:
        if not last.isspace():  # the same class as the regexes' \s
            return ""
        stripped = text.rstrip()
        end = len(stripped)
        if not end:
            return ""
        last = stripped[-1]
        if last not in _MAYBE_LAST:
            return ""
    if last in _CLOSE_SET or last in _CODE_END:
        return last
    # a stray character after a code, or "（…）。" with no code
    if end >= 2 and text[end - 2] in _BEFORE_STRAY:
        return last
    if last in _STOPS:
        j = end - 2
        while j >= 0 and text[j] in _INLINE_WS:
            j -= 1
        if j >= 0 and text[j] in _CLOSE_SET:
            return last
    return ""


def find_credit_block(text: str) -> dict | None:
    """Find the credit block (and/or ROC code) at the end of a paragraph.

    Returns ``{'start', 'end', 'credit_line', 'credits', 'roc_code'}`` where start/end is the
    span to cut out, or None when the paragraph does not end in one.

    Only the last ``_TAIL`` characters are searched, so the cost does not grow with the paragraph.
    """
    if not isinstance(text, str) or not text:
        return None
    last = _may_end_in_block(text)
    if not last:
        return None
    n = len(text)
    tail_start = n - _TAIL if n > _TAIL else 0
    # matched with full-width digits read as ASCII (same length: every span is the same in `text`,
    # which the credit line and the code are taken from, as written)
    if _FULLWIDTH_DIGIT_RE.search(text, tail_start):
        probe, last = text.translate(FULLWIDTH_DIGITS), last.translate(FULLWIDTH_DIGITS)
    else:
        probe = text
    # Start the search at the last opening bracket that could begin the block.
    last_close = max(probe.rfind("）", tail_start), probe.rfind(")", tail_start), probe.rfind("﹚", tail_start))
    if last_close >= 0:
        lo = last_close - _INNER_MAX if last_close > _INNER_MAX else 0
        opener = max(probe.rfind("（", lo, last_close), probe.rfind("(", lo, last_close),
                     probe.rfind("﹙", lo, last_close))
        m = _BLOCK_RE.match(probe, opener) if opener >= 0 else None
        if m is not None:
            inner = text[m.start(1):m.end(1)]
            code = text[m.start("code"):m.end("code")] if m.group("code") else None
            if _is_credit_line(inner, code is not None):
                return {
                    "start": m.start(),
                    "end": n,
                    "credit_line": inner.strip(),
                    "credits": parse_credit_line(inner),
                    "roc_code": code,
                }
    if "0" <= last <= "9":  # a bare code ends in a digit
        m = _BARE_CODE_RE.search(probe, tail_start)
        if m is not None and _PHONE_LABEL_RE.search(probe, tail_start, m.start("code")) is None:
            # keep leading whitespace in the text; cut from the code on
            return {
                "start": m.start("code"),
                "end": n,
                "credit_line": None,
                "credits": [],
                "roc_code": text[m.start("code"):m.end("code")],
            }
    return None
