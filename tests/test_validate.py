"""`validate_dataset`: built datasets pass; each contract check fails on a deliberately broken copy."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.schema import ARTICLE_SCHEMA, DUPLICATE_SCHEMA, REJECT_SCHEMA
from pipeline.validate import BOILERPLATE_MARKERS, _check_articles, validate_dataset

REPO = Path(__file__).resolve().parent.parent


def test_demo_build_is_valid(demo_build: Path) -> None:
    assert validate_dataset(demo_build) == []


@pytest.mark.corpus
def test_corpus_build_is_valid_and_fast(corpus_build: Path) -> None:
    t0 = time.perf_counter()
    problems = validate_dataset(corpus_build)
    seconds = time.perf_counter() - t0
    assert problems == []
    assert seconds <= 2.0, f"validate took {seconds:.2f}s"


def test_cli_validate(demo_build: Path, tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(demo_build)],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(tmp_path / "nothing")],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1
    assert "not found" in bad.stderr


# -- corrupted copies ---------------------------------------------------------------


@pytest.fixture
def copy(demo_build: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(demo_build, dst)
    assert validate_dataset(dst) == []
    return dst


def _manifest(ds: Path) -> dict[str, Any]:
    return json.loads((ds / "manifest.json").read_text(encoding="utf-8"))


def _save_manifest(ds: Path, manifest: dict[str, Any]) -> None:
    (ds / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def _rewrite(ds: Path, rel: str, table: pa.Table) -> None:
    """Write a file of the dataset and keep the manifest's file sizes in step, so that only
    the deliberate corruption is reported."""
    pq.write_table(table, ds / rel)
    manifest = _manifest(ds)
    if rel in manifest.get("files", {}):
        manifest["files"][rel] = (ds / rel).stat().st_size
    _save_manifest(ds, manifest)


ART = "articles/part-00000.parquet"


def _articles(ds: Path) -> pa.Table:
    return pq.read_table(ds / ART)


def _edit_rows(ds: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    rows = _articles(ds).to_pylist()
    edit(rows)
    _rewrite(ds, ART, pa.Table.from_pylist(rows, schema=ARTICLE_SCHEMA))


def _assert_problem(ds: Path, *fragments: str) -> list[str]:
    problems = validate_dataset(ds)
    assert problems, "the corruption was not detected"
    for fragment in fragments:
        assert any(fragment in p for p in problems), (fragment, problems)
    return problems


def test_missing_folder(tmp_path: Path) -> None:
    assert validate_dataset(tmp_path / "nope") == [f"dataset folder not found: {tmp_path / 'nope'}"]


def test_article_column_type(copy: Path) -> None:
    t = _articles(copy)
    i = t.schema.get_field_index("dateline_day")
    t = t.set_column(i, pa.field("dateline_day", pa.int32()), t.column(i).cast(pa.int32()))
    _rewrite(copy, ART, t)
    _assert_problem(copy, "column dateline_day has type int32, expected int8")


def test_article_nullability(copy: Path) -> None:
    t = _articles(copy)
    i = t.schema.get_field_index("article_id")
    t = t.set_column(i, pa.field("article_id", pa.string(), nullable=True), t.column(i))
    _rewrite(copy, ART, t)
    _assert_problem(copy, "column article_id nullable=True, expected nullable=False")


def test_article_missing_and_extra_column(copy: Path) -> None:
    t = _articles(copy).drop_columns(["roc_date"]).append_column("extra", pa.array([1] * 36))
    _rewrite(copy, ART, t)
    _assert_problem(copy, "missing ['roc_date'], extra ['extra']")


def test_article_column_order(copy: Path) -> None:
    t = _articles(copy)
    names = t.column_names
    _rewrite(copy, ART, t.select([names[1], names[0], *names[2:]]))
    _assert_problem(copy, "columns differ from the contract")


def test_no_article_files(copy: Path) -> None:
    (copy / ART).unlink()
    _assert_problem(copy, "articles/: no *.parquet files")


def test_not_parquet(copy: Path) -> None:
    (copy / ART).write_bytes(b"PAR1 half written")
    _assert_problem(copy, "not a readable Parquet file")


def test_truncated_file_size_differs_from_manifest(copy: Path) -> None:
    data = (copy / "duplicates.parquet").read_bytes()
    (copy / "duplicates.parquet").write_bytes(data + b"\0")
    _assert_problem(copy, "duplicates.parquet has")


def test_rejects_schema(copy: Path) -> None:
    _rewrite(copy, "rejects.parquet", pa.table({"source_path": pa.array([], pa.string()),
                                                "reason": pa.array([], pa.string())}))
    _assert_problem(copy, "rejects.parquet: columns differ")


def test_duplicates_schema(copy: Path) -> None:
    t = pq.read_table(copy / "duplicates.parquet")
    i = t.schema.get_field_index("published_at")
    t = t.set_column(i, pa.field("published_at", pa.timestamp("us", tz="UTC")), t.column(i).cast(pa.timestamp("us", tz="UTC")))
    _rewrite(copy, "duplicates.parquet", t)
    _assert_problem(copy, "column published_at has type timestamp[us, tz=UTC]")


def test_rejects_missing(copy: Path) -> None:
    (copy / "rejects.parquet").unlink()
    _assert_problem(copy, "rejects.parquet missing")


def test_manifest_missing(copy: Path) -> None:
    (copy / "manifest.json").unlink()
    assert validate_dataset(copy) == ["manifest.json missing"]


def test_manifest_not_json(copy: Path) -> None:
    (copy / "manifest.json").write_text("{half", encoding="utf-8")
    _assert_problem(copy, "manifest.json unreadable or not JSON")


def test_manifest_counts_do_not_add_up(copy: Path) -> None:
    m = _manifest(copy)
    m["counts"]["inputs"] += 1
    _save_manifest(copy, m)
    _assert_problem(copy, "manifest: inputs 38 != articles 36 + rejects 0 + duplicates 1")


def test_manifest_per_source_does_not_add_up(copy: Path) -> None:
    m = _manifest(copy)
    m["counts"]["per_source"]["BBC"]["inputs"] = 5
    _save_manifest(copy, m)
    _assert_problem(copy, "source 'BBC': inputs 5 != articles + rejects + duplicates",
                    "per-source inputs add up to 41")


def test_manifest_per_source_articles_differ_from_rows(copy: Path) -> None:
    m = _manifest(copy)
    pc_ = m["counts"]["per_source"]
    pc_["BBC"]["articles"] -= 1
    pc_["BBC"]["inputs"] -= 1
    pc_["Solidot"]["articles"] += 1
    pc_["Solidot"]["inputs"] += 1
    _save_manifest(copy, m)
    _assert_problem(copy, "source 'BBC' has 1 article rows, manifest says 0")


def test_article_count_differs_from_rows(copy: Path) -> None:
    _edit_rows(copy, lambda rows: rows.pop())
    _assert_problem(copy, "counts.articles is 36 but the dataset has 35 rows")


def test_reject_count_differs_from_rows(copy: Path) -> None:
    row = {"source_path": "x.md", "reason": "empty_file", "detail": "0 bytes", "content_sha256": None,
           "size_bytes": 0, "source": None}
    _rewrite(copy, "rejects.parquet", pa.Table.from_pylist([row], schema=REJECT_SCHEMA))
    _assert_problem(copy, "counts.rejects is 0 but the dataset has 1 rows")


def test_unknown_reject_reason(copy: Path) -> None:
    row = {"source_path": "x.md", "reason": "gremlins", "detail": "", "content_sha256": None,
           "size_bytes": 0, "source": None}
    _rewrite(copy, "rejects.parquet", pa.Table.from_pylist([row], schema=REJECT_SCHEMA))
    m = _manifest(copy)
    c = m["counts"]
    c["rejects"], c["inputs"] = 1, c["inputs"] + 1
    c["per_source"]["BBC"]["rejects"] = 1
    c["per_source"]["BBC"]["inputs"] += 1
    c["rejects_by_reason"] = {"gremlins": 1}
    _save_manifest(copy, m)
    assert validate_dataset(copy) == ["rejects: unknown reason codes ['gremlins']"]


def test_unknown_warning_code(copy: Path) -> None:
    _edit_rows(copy, lambda rows: rows[3]["warnings"].append("felt_odd"))
    _assert_problem(copy, "unknown warning codes ['felt_odd']")


def test_duplicate_article_id(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[5]["article_id"] = rows[4]["article_id"]
    _edit_rows(copy, edit)
    _assert_problem(copy, "article_id not unique")


def test_null_article_id(copy: Path) -> None:
    """Parquet refuses nulls in a non-null column, so a null id needs a nullable schema: both
    the schema and (on the rows themselves) the null are reported."""
    t = _articles(copy)
    i = t.schema.get_field_index("article_id")
    ids = t.column(i).to_pylist()
    ids[0] = None
    t = t.set_column(i, pa.field("article_id", pa.string(), nullable=True), pa.array(ids, pa.string()))
    _rewrite(copy, ART, t)
    _assert_problem(copy, "column article_id nullable=True")
    assert "articles: 1 rows with a null article_id" in _check_articles(t)


def test_rows_out_of_order(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[0], rows[10] = rows[10], rows[0]
    _edit_rows(copy, edit)
    _assert_problem(copy, "rows not ordered by (published_at nulls last, article_id); first out of place at row 0")


def test_null_published_at_must_sort_last(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[0]["published_at"] = None
    _edit_rows(copy, edit)
    _assert_problem(copy, "rows not ordered")


def test_roc_date_inconsistent(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["roc_date"] is not None)
        row["roc_date"] = row["roc_date"].replace(year=row["roc_date"].year + 1)
    _edit_rows(copy, edit)
    _assert_problem(copy, "roc_date does not match roc_code")


def test_roc_date_without_code(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["roc_code"] is None)
        row["roc_date"] = dt.date(2020, 1, 1)
    _edit_rows(copy, edit)
    _assert_problem(copy, "rows have roc_date without roc_code")


@pytest.mark.parametrize("day", [0, 32, -3])
def test_dateline_day_out_of_range(copy: Path, day: int) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[2]["dateline_day"] = day
    _edit_rows(copy, edit)
    _assert_problem(copy, f"dateline_day outside 1-31: {day}")


@pytest.mark.parametrize("marker", BOILERPLATE_MARKERS)
def test_boilerplate_left(copy: Path, marker: str) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[1]["paragraphs"].append(f"x {marker} y")
        rows[1]["text"] = "\n".join(rows[1]["paragraphs"])
    _edit_rows(copy, edit)
    _assert_problem(copy, f"boilerplate {marker!r} left in the text of 1 rows")


def test_text_not_joined_paragraphs(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[7]["text"] = " ".join(rows[7]["paragraphs"]) + "!"
    _edit_rows(copy, edit)
    _assert_problem(copy, "text != '\\n'.join(paragraphs) in 1 rows")


def test_empty_paragraph(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[7]["paragraphs"].append("")
        rows[7]["text"] = "\n".join(rows[7]["paragraphs"])
    _edit_rows(copy, edit)
    _assert_problem(copy, "1 empty paragraphs")


def test_roc_code_left_in_last_paragraph(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["roc_code"] and r["paragraphs"])
        row["paragraphs"][-1] += row["roc_code"]
        row["text"] = "\n".join(row["paragraphs"])
    _edit_rows(copy, edit)
    _assert_problem(copy, "roc_code left at the end of the last paragraph")


def test_credit_block_left_in_last_paragraph(copy: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["credit_line"] and r["paragraphs"])
        row["paragraphs"][-1] += f"（{row['credit_line']}）"
        row["text"] = "\n".join(row["paragraphs"])
    _edit_rows(copy, edit)
    _assert_problem(copy, "credit block left in the last paragraph")


def test_same_post_twice(copy: Path) -> None:
    """A source_path both kept and listed as a reject: one input counted twice."""
    path = _articles(copy).column("source_path")[0].as_py()
    row = {"source_path": path, "reason": "empty_file", "detail": "", "content_sha256": None,
           "size_bytes": 0, "source": "BBC"}
    _rewrite(copy, "rejects.parquet", pa.Table.from_pylist([row], schema=REJECT_SCHEMA))
    _assert_problem(copy, "source_path listed more than once")


def test_duplicate_pointing_nowhere(copy: Path) -> None:
    t = pq.read_table(copy / "duplicates.parquet")
    rows = t.to_pylist()
    rows[0]["kept_source_path"] = "gone.md"
    rows[0]["article_id"] = "000000000000"
    _rewrite(copy, "duplicates.parquet", pa.Table.from_pylist(rows, schema=DUPLICATE_SCHEMA))
    _assert_problem(copy, "duplicates: article_id not among the articles",
                    "duplicates: kept_source_path not among the articles")


def test_articles_files_listed_in_manifest(copy: Path) -> None:
    shutil.copy(copy / ART, copy / "articles" / "part-00001.parquet")
    problems = _assert_problem(copy, "articles_files", "article_id not unique")
    assert problems
