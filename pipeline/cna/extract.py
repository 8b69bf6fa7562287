"""Dateline, credits and ROC code out of a post's clean paragraphs.

``extract_cna_fields`` for the CNA feed, ``extract_credits_generic`` for feeds that
republish CNA/AFP copy (RFI). Both return ``(clean_paragraphs, fields, warnings)`` and
never raise.
"""

from __future__ import annotations

from pipeline.cna.credits import find_credit_block
from pipeline.cna.dateline import count_datelines, parse_dateline
from pipeline.cna.roc import check_roc_code

FIELD_NAMES = (
    "dateline",
    "dateline_place",
    "dateline_day",
    "dateline_kind",
    "reporters",
    "credit_line",
    "credits",
    "roc_code",
    "roc_date",
)
_DATELINE_SEARCH = 3  # look for the dateline in the first paragraphs ("（更新）" or a label first)


def _empty_fields() -> dict:
    return {
        "dateline": None,
        "dateline_place": None,
        "dateline_day": None,
        "dateline_kind": None,
        "reporters": [],
        "credit_line": None,
        "credits": [],
        "roc_code": None,
        "roc_date": None,
    }


def _extract(
    paragraphs: list[str], published_at_ms: int | None, cna: bool
) -> tuple[list[str], dict, list[str]]:
    fields = _empty_fields()
    warnings: list[str] = []
    paras = [p for p in (paragraphs or []) if isinstance(p, str)]

    # credit block: the last paragraph that ends in one (text may follow it, e.g. transcripts)
    for i in range(len(paras) - 1, -1, -1):
        block = find_credit_block(paras[i])
        if block is None or (not cna and block["credit_line"] is None):
            continue
        if block["credit_line"] is None and block["start"] == 0 and i > 0:
            # the code alone in its own paragraph: the credits may end the one before it
            prev = find_credit_block(paras[i - 1])
            if prev is not None and prev["credit_line"] is not None and prev["roc_code"] is None:
                paras[i] = ""
                i -= 1
                block = {**prev, "roc_code": block["roc_code"]}
        fields["credit_line"] = block["credit_line"]
        fields["credits"] = block["credits"]
        fields["roc_code"] = block["roc_code"]
        if block["credit_line"] is not None and not block["credits"]:
            warnings.append("credits_unparsed")
        paras[i] = paras[i][: block["start"]].rstrip()
        code = block["roc_code"]
        if code and paras[i].endswith(code) and not paras[i][-len(code) - 1 : -len(code)].isdigit():
            # the code written twice: "…互動。1090909（編輯：X）1090909"
            paras[i] = paras[i][: -len(code)].rstrip()
        break

    if fields["roc_code"] is not None:
        fields["roc_date"], roc_warnings = check_roc_code(fields["roc_code"], published_at_ms)
        warnings.extend(roc_warnings)

    # dateline: at the start of the first paragraph (or of one of the first few)
    for i, para in enumerate(paras[:_DATELINE_SEARCH]):
        found = parse_dateline(para)
        if found is None:
            continue
        for key in ("dateline", "dateline_place", "dateline_day", "dateline_kind", "reporters"):
            fields[key] = found[key]
        prefix = para[: found["start"]].strip()
        body = para[found["end"] :].strip()
        paras[i : i + 1] = [p for p in (prefix, body) if p]
        break
    else:
        if cna:
            warnings.append("no_dateline")
    if count_datelines(paragraphs or []) > 1:
        warnings.append("several_datelines")

    clean = [p for p in paras if p.strip()]
    return clean, fields, warnings


def extract_cna_fields(
    paragraphs: list[str], published_at_ms: int | None
) -> tuple[list[str], dict, list[str]]:
    """CNA post: remove the dateline and the credit block + ROC code; return the fields.

    fields: dateline, dateline_place, dateline_day, dateline_kind, reporters, credit_line,
    credits, roc_code, roc_date (datetime.date | None). Warnings: no_dateline,
    several_datelines, credits_unparsed and those of check_roc_code.
    """
    # No catch-all here: a bug must surface as the post's `internal_error` reject (process.py),
    # never as an article silently missing its fields.
    return _extract(paragraphs, published_at_ms, cna=True)


def extract_credits_generic(
    paragraphs: list[str], published_at_ms: int | None
) -> tuple[list[str], dict, list[str]]:
    """Other feeds (RFI republishing CNA/AFP copy): credit block anywhere, dateline optional."""
    return _extract(paragraphs, published_at_ms, cna=False)
