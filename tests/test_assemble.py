"""The assemble stage's derived columns (made from others as the articles are written)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.assemble import add_derived_columns
from pipeline.schema import ARTICLE_SCHEMA, SHARD_SCHEMA


def _shard_rows(paragraph_lists: list[list[str]]) -> pa.Table:
    n = len(paragraph_lists)
    columns = {f.name: pa.nulls(n, f.type) for f in SHARD_SCHEMA}
    columns["article_id"] = pa.array([f"a{i}" for i in range(n)])
    columns["source_path"] = pa.array([f"p{i}.md" for i in range(n)])
    columns["content_sha256"] = pa.array(["0" * 64] * n)
    columns["paragraphs"] = pa.array(paragraph_lists, pa.list_(pa.string()))
    return pa.table(columns, schema=SHARD_SCHEMA)


def test_write_adds_text() -> None:
    """`text` is not shipped in shards; the writer joins it as "\\n".join(paragraphs) would,
    in ARTICLE_SCHEMA's column order."""
    lists = [["（中央社台北1日電）第一段。", "第二段 with ASCII"], [], ["only one"], ["", "x"]]
    table = add_derived_columns(_shard_rows(lists))
    assert table.schema == ARTICLE_SCHEMA
    assert table.column("text").to_pylist() == ["\n".join(ps) for ps in lists]
    assert "text" not in SHARD_SCHEMA.names
