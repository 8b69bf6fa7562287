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
from _synthetic_posts import write_posts

from pipeline.build import BuildOptions, build
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


def test_file_url(demo_build: Path) -> None:
    """`build --output file:///x` works, so `validate file:///x` must too."""
    assert validate_dataset(f"file://{demo_build}") == []
    ok = subprocess.run([sys.executable, "-m", "pipeline", "validate", f"file://{demo_build}"],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr


def test_remote_url_is_a_clear_problem() -> None:
    assert validate_dataset("memory://bucket/outputs") == [
        "only local datasets can be read (a folder or a file:// URL), not memory://bucket/outputs; "
        "copy it to a local folder first"]


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


# -- extra columns: "add columns freely" (SCHEMA.md) ---------------------------------


def test_extra_article_columns_are_accepted(copy: Path) -> None:
    t = _articles(copy)
    t = t.append_column("lang", pa.array(["zh"] * t.num_rows)).add_column(3, "word_count", pa.array([1] * t.num_rows))
    _rewrite(copy, ART, t)
    assert validate_dataset(copy) == []


def test_extra_reject_column_is_accepted(copy: Path) -> None:
    t = pq.read_table(copy / "rejects.parquet")
    _rewrite(copy, "rejects.parquet", t.append_column("note", pa.array([], pa.string())))
    assert validate_dataset(copy) == []


def test_renamed_column_is_still_reported(copy: Path) -> None:
    t = _articles(copy)
    _rewrite(copy, ART, t.rename_columns(["roc_day" if n == "roc_date" else n for n in t.column_names]))
    _assert_problem(copy, "missing ['roc_date'], extra ['roc_day']")


def test_extra_column_does_not_hide_misorder(copy: Path) -> None:
    t = _articles(copy).append_column("lang", pa.array(["zh"] * 36))
    names = t.column_names
    _rewrite(copy, ART, t.select([names[1], names[0], *names[2:]]))
    _assert_problem(copy, "columns differ from the contract (order differs)")


# -- damaged part files: every column is decoded ------------------------------------


@pytest.fixture(scope="module")
def synthetic_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred synthetic posts: a part file with every column chunk large enough to damage."""
    root = tmp_path_factory.mktemp("synthetic-build")
    write_posts(root / "posts", 300)
    out = root / "outputs"
    build(BuildOptions(input=str(root / "posts"), output=str(out), cache_dir=str(root / "cache"), workers=1,
                       use_cache=False, write_card=False))
    assert validate_dataset(out) == []
    return out


def _damaged_copy(src: Path, dst: Path, start: int, length: int = 200) -> Path:
    """A copy of the dataset with `length` bytes of the first part file XOR-ed from `start`."""
    shutil.copytree(src, dst)
    part = dst / ART
    data = bytearray(part.read_bytes())
    for i in range(start, start + length):
        data[i] ^= 0xFF
    part.write_bytes(bytes(data))  # same size: the manifest's byte count still matches
    return dst


def _column_chunks(part: Path) -> dict[str, tuple[int, int]]:
    """Leaf column -> (first byte, size) of its chunk in the first row group."""
    rg = pq.ParquetFile(part).metadata.row_group(0)
    chunks = (rg.column(i) for i in range(rg.num_columns))
    return {c.path_in_schema: (c.dictionary_page_offset or c.data_page_offset, c.total_compressed_size)
            for c in chunks}


def test_damaged_content_sha256_is_reported(synthetic_build: Path, tmp_path: Path) -> None:
    """The reported case: the damage falls in a column no check reads; load() fails on it."""
    first, size = _column_chunks(synthetic_build / ART)["content_sha256"]
    ds = _damaged_copy(synthetic_build, tmp_path / "ds", first + size // 3)
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(ds / ART)
    _assert_problem(ds, "part-00000.parquet: cannot read rows")


def test_damage_anywhere_that_breaks_reading_is_reported(synthetic_build: Path, tmp_path: Path) -> None:
    """Damage in each column chunk, and at a third of the file: whenever pyarrow cannot read the
    file, validate says so, naming it (and never raises)."""
    spans = _column_chunks(synthetic_build / ART)
    starts = {col: first + size // 3 for col, (first, size) in spans.items()}
    starts["a third of the file"] = (synthetic_build / ART).stat().st_size // 3
    missed = []
    for i, (where, start) in enumerate(starts.items()):
        first, size = spans.get(where, (start, 200))
        ds = _damaged_copy(synthetic_build, tmp_path / str(i), start, min(200, first + size - start))
        try:
            pq.read_table(ds / ART)
        except (OSError, pa.ArrowException):
            if not any(p.startswith("part-00000.parquet: ") for p in validate_dataset(ds)):
                missed.append(where)
        else:
            validate_dataset(ds)  # readable but maybe wrong: any problems are fine, an exception is not
    assert not missed


# -- manifest of the wrong shape: problems, never a crash ---------------------------


@pytest.mark.parametrize("field, value, fragment", [
    (("counts", "per_source", "BBC"), 5, "counts.per_source['BBC'] is not an object (got int)"),
    (("articles_files",), [1, "a"], "articles_files is not a list of strings"),
    (("counts", "per_source", "BBC", "inputs"), "3", "counts.per_source['BBC'] values not non-negative integers"),
    (("counts", "rejects_by_reason"), [1], "counts.rejects_by_reason is not an object (got list)"),
    (("counts", "inputs"), True, "counts.inputs missing or not a non-negative integer"),
    (("files", "rejects.parquet"), None, "files values not non-negative integers: 'rejects.parquet'"),
])
def test_manifest_wrong_type(copy: Path, field: tuple[str, ...], value: Any, fragment: str) -> None:
    m = _manifest(copy)
    _set(m, field, value)
    _save_manifest(copy, m)
    _assert_problem(copy, fragment)


def _set(doc: Any, field: tuple[str | int, ...], value: Any) -> None:
    for key in field[:-1]:
        doc = doc[key]
    doc[field[-1]] = value


def _fields(doc: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into a JSON document (object keys and list indexes), parents first."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    return [p for k, v in items for p in [(*prefix, k), *_fields(v, (*prefix, k))]]


# Fields validate reads; others (timings, cache, warnings...) are informative only.
_CHECKED_FIELDS = ("counts", "articles_files", "files")
_WRONG_VALUES = (None, True, -1, 1.5, 7, "3", [], [1, "a"], {}, {"x": 5}, {"x": {"inputs": "3"}})


def test_manifest_fuzz_wrong_types(copy: Path) -> None:
    """Any field validate reads, set to a value of another type: problems, never an exception."""
    original = _manifest(copy)
    fields = [f for f in _fields(original) if f[0] in _CHECKED_FIELDS and f[:2] != ("counts", "warnings")]
    assert ("counts", "per_source", "BBC", "inputs") in fields
    for field in [(), *fields]:
        for value in _WRONG_VALUES:
            m = json.loads(json.dumps(original))
            if field:
                _set(m, field, value)
            else:
                m = value
            _save_manifest(copy, m)
            problems = validate_dataset(copy)
            assert all(isinstance(p, str) for p in problems)
            old = original
            for key in field:
                old = old[key]
            if type(value) is not type(old):
                assert problems, (field, value)
