"""Extract stage: clean paragraphs -> dateline, credits, ROC code (and paragraphs without them).

Dispatches on the source: CNA copy gets CNA's rules, every other feed the generic credit
search (RFI republishes CNA/AFP copy with simplified credits).
"""

from __future__ import annotations

from typing import Any

from pipeline.cna.extract import extract_cna_fields, extract_credits_generic


def extract_fields(paragraphs: list[str], published_at_ms: int | None,
                   cna: bool) -> tuple[list[str], dict[str, Any], list[str]]:
    """Returns (paragraphs, fields, warnings); see pipeline.cna.extract for the field keys."""
    if cna:
        return extract_cna_fields(paragraphs, published_at_ms)
    return extract_credits_generic(paragraphs, published_at_ms)
