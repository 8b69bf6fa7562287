"""Every hand-written fixture post through the whole chain, checked field by field
against tests/fixtures/posts/EXPECTED.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.process import process_post

FIXTURES = Path(__file__).parent / "fixtures" / "posts"
EXPECTED = json.loads((FIXTURES / "EXPECTED.json").read_text(encoding="utf-8"))
EXACT_FIELDS = ["source", "url", "title", "published_at", "dateline", "dateline_place", "dateline_day",
                "dateline_kind", "reporters", "credit_line", "credits", "roc_code", "roc_date",
                "paragraphs", "images", "related"]


def run_fixture(name: str) -> tuple[str, dict]:
    raw = (FIXTURES / name).read_bytes()
    return process_post(f"fixtures/{name}", raw)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fields(name: str) -> None:
    expected = EXPECTED[name]
    kind, row = run_fixture(name)
    if "reject" in expected:
        assert kind == "reject" and row["reason"] == expected["reject"]
        return
    assert kind == "article", row
    got = dict(row)
    got["roc_date"] = got["roc_date"].isoformat() if got["roc_date"] else None
    for field in EXACT_FIELDS:
        assert got[field] == expected[field], field
    if expected["article_id"] is None:
        assert re.fullmatch(r"[0-9a-f]{16}", got["article_id"])
        assert got["section"] is None
    else:
        assert (got["article_id"], got["section"]) == (expected["article_id"], expected["section"])
    assert set(expected["warnings"]) <= set(got["warnings"])
    assert "text" not in got  # joined from the paragraphs at write time (test_write_adds_text)
