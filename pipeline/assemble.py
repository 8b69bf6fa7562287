"""Assemble stage: the parts of one post -> one article record (a dict of ARTICLE_COLUMNS)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ids import article_identity
from pipeline.schema import ARTICLE_SCHEMA

_ROLE_VIEWS = (("translators", "translator"), ("reviewers", "reviewer"),
               ("editors", "editor"), ("compilers", "compiler"))


def unique_in_order(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def assemble_article(source_path: str, content_sha256: str, parsed: dict[str, Any],
                     cleaned: dict[str, Any], paragraphs: list[str], fields: dict[str, Any],
                     warnings: list[str]) -> dict[str, Any]:
    """Build the article row (SHARD_SCHEMA's columns). Timestamps stay epoch ms; pyarrow types them on write."""
    article_id, section = article_identity(parsed["url"])
    credits = fields.get("credits") or []
    record: dict[str, Any] = {
        "article_id": article_id,
        "source": parsed["source"],
        "url": parsed["url"],
        "section": section,
        "title": parsed["title"],
        "published_at": parsed["published_at_ms"],
        "feed_date": parsed["feed_date_ms"],
        "paragraphs": paragraphs,  # `text` is joined from them as the articles are written
        "dateline": fields.get("dateline"),
        "dateline_place": fields.get("dateline_place"),
        "dateline_day": fields.get("dateline_day"),
        "dateline_kind": fields.get("dateline_kind"),
        "reporters": fields.get("reporters") or [],
        "credit_line": fields.get("credit_line"),
        "credits": credits,
        "roc_code": fields.get("roc_code"),
        "roc_date": fields.get("roc_date"),
        "images": cleaned["images"],
        "related": cleaned["related"],
        "warnings": unique_in_order(parsed["warnings"] + cleaned["warnings"] + warnings),
        "source_path": source_path,
        "content_sha256": content_sha256,
    }
    for column, role in _ROLE_VIEWS:
        record[column] = [c["name"] for c in credits if c["role"] == role]
    day = record["dateline_day"]
    if day is not None and not (1 <= day <= 31):
        record["dateline_day"] = None
    if not paragraphs:
        record["warnings"].append("empty_body")
    return record


def add_derived_columns(shard_rows: pa.Table) -> pa.Table:
    """Rows of shards (SHARD_SCHEMA) -> article rows (ARTICLE_SCHEMA): the columns made from
    others, on whole columns with Arrow as the articles are written rather than per post and
    shipped through the shards. `text` is the paragraphs joined with newlines (an empty list
    gives "")."""
    text = pc.binary_join(shard_rows.column("paragraphs"), "\n")
    return shard_rows.add_column(ARTICLE_SCHEMA.get_field_index("text"), ARTICLE_SCHEMA.field("text"), text)
