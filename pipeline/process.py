"""One post through the stages: parse -> clean -> extract -> assemble.

`process_post` is the unit every engine schedules (in batches); it never raises.
"""

from __future__ import annotations

import hashlib
import traceback
from typing import Any

from pipeline.assemble import assemble_article
from pipeline.clean import GENERIC_RULES, clean_body
from pipeline.cna.markup import CNA_RULES
from pipeline.cna.url import is_cna
from pipeline.errors import Reject
from pipeline.extract import extract_fields
from pipeline.parse import parse_post


def reject_row(source_path: str, reason: str, detail: str, content_sha256: str | None = None,
               size_bytes: int | None = None, source: str | None = None) -> dict[str, Any]:
    return {"source_path": source_path, "reason": reason, "detail": detail[:500],
            "content_sha256": content_sha256, "size_bytes": size_bytes, "source": source}


def process_post(source_path: str, raw: bytes, content_sha256: str | None = None) -> tuple[str, dict[str, Any]]:
    """Returns ('article', record) or ('reject', reject row)."""
    sha = content_sha256 or hashlib.sha256(raw).hexdigest()
    source = None
    try:
        parsed = parse_post(raw)
        source = parsed["source"]
        cna = is_cna(parsed["url"], source)
        cleaned = clean_body(parsed["body_html"], CNA_RULES if cna else GENERIC_RULES)
        paragraphs, fields, warnings = extract_fields(cleaned["paragraphs"], parsed["published_at_ms"], cna)
        return "article", assemble_article(source_path, sha, parsed, cleaned, paragraphs, fields, warnings)
    except Reject as rej:
        return "reject", reject_row(source_path, rej.reason, rej.detail, sha, len(raw), source or rej.source)
    except Exception as exc:  # a bug must not sink the run: the post is kept as a reject
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}"
        return "reject", reject_row(source_path, "internal_error", detail, sha, len(raw), source)
