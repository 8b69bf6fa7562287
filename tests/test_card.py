"""pipeline.card: the dataset card and its figures describe exactly what is on disk."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest
from _dataset_factory import CNA, RFI, _article, make_dataset, read_manifest

from pipeline.card import FIGURES, write_dataset_card
from pipeline.schema import ARTICLE_SCHEMA, REJECT_REASONS, WARNING_CODES


def _build(path, **kw):
    out = make_dataset(path, **kw)
    write_dataset_card(out, read_manifest(out))
    return out, (out / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def card(tmp_path):
    return _build(tmp_path / "out")


def _yaml_header(text: str) -> str:
    assert text.startswith("---\n")
    return text[4:text.index("\n---\n", 4)]


def test_yaml_header(card):
    _, text = card
    head = _yaml_header(text)
    for line in ("license: other", "language:\n- zh", "task_categories:", "size_categories:\n- n<1K",
                 "source_datasets:", "configs:", "path: articles/*.parquet", "pretty_name:"):
        assert line in head, line
    yaml = pytest.importorskip("yaml")
    meta = yaml.safe_load(head)
    assert meta["configs"][0]["data_files"][0]["path"] == "articles/*.parquet"
    assert meta["language"] == ["zh"]


def test_schema_table_lists_every_column(card):
    _, text = card
    section = text[text.index("## Schema"):text.index("## Counts")]
    names = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.M)
    assert names == ARTICLE_SCHEMA.names


def test_counts_equal_manifest(card):
    out, text = card
    m = read_manifest(out)["counts"]
    for key in ("inputs", "articles", "rejects", "duplicates"):
        assert f"- {key}: {m[key]}\n" in text
    for src, c in m["per_source"].items():
        assert re.search(rf"\| {re.escape(src)} \| {c['inputs']} \| {c['articles']} \| {c['rejects']} \| "
                         rf"{c['duplicates']} \|", text), src
    for reason, n in m["rejects_by_reason"].items():
        assert f"| `{reason}` | {n} | {REJECT_REASONS[reason]} |" in text
    for code, n in m["warnings"].items():
        assert f"| `{code}` | {n} | {WARNING_CODES[code]} |" in text
    assert "holds: nothing was silently dropped" in text
    assert "| `published_at` | 2020-10-01 03:00:00 UTC | 2020-10-05 09:00:00 UTC |" in text
    assert "| 1 | 陳正健 (3) | 劉學源 (3) |" in text  # busiest translator and reviewer


def test_coverage(card):
    _, text = card
    assert "| `article_id` | 100.0% |" in text
    assert "| `section` | 75.0% |" in text  # 6 of 8 are CNA
    assert "| `reporters` | 50.0% |" in text  # empty lists do not count as filled
    assert "| `text` | 100.0% |" in text


def test_figures_exist_are_referenced_and_match_manifest(card):
    out, text = card
    for rel in FIGURES.values():
        png = out / rel
        assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({rel})" in text
        assert b"Software" not in png.read_bytes() and b"Creation" not in png.read_bytes()
    counts = json.loads((out / "figures" / "counts.json").read_text(encoding="utf-8"))
    total = read_manifest(out)["counts"]["articles"]
    assert counts["articles"] == total
    assert sum(counts["per_day"].values()) + counts["dated_by"]["undated"] == total
    assert sum(counts["per_section"].values()) == total
    assert sum(counts["per_source"].values()) == total
    assert counts["per_source"] == {"source #1": 6, "source #2": 2}
    # 15:30 UTC on Oct 1 is Oct 1 23:30 in Taipei; the RFI post without epoch is dated by feed_date
    assert counts["per_day"]["2020-10-01"] == 2 and counts["per_day"]["2020-10-04"] == 1


def test_byte_identical_rebuild(card):
    out, _ = card
    files = ["README.md", "figures/counts.json", *FIGURES.values()]
    first = {f: (out / f).read_bytes() for f in files}
    write_dataset_card(out, read_manifest(out))
    assert {f: (out / f).read_bytes() for f in files} == first


@pytest.mark.filterwarnings("error")  # e.g. no "Glyph ... missing" font warnings
def test_identical_across_folders(tmp_path):
    a, ta = _build(tmp_path / "a")
    b, tb = _build(tmp_path / "b")
    assert ta == tb
    for rel in FIGURES.values():
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_empty_dataset(tmp_path):
    out, text = _build(tmp_path / "empty", articles=[], rejects=[])
    assert "- articles: 0\n" in text and "size_categories:\n- n<1K" in text
    for rel in FIGURES.values():
        assert (out / rel).exists()
    counts = json.loads((out / "figures" / "counts.json").read_text(encoding="utf-8"))
    assert counts["articles"] == 0 and counts["per_day"] == {}


def test_no_part_files_at_all(tmp_path):
    out = make_dataset(tmp_path / "none", articles=[])
    for p in (out / "articles").iterdir():
        p.unlink()
    write_dataset_card(out, read_manifest(out))
    assert "- articles: 0\n" in (out / "README.md").read_text(encoding="utf-8")


def test_only_non_cna_posts(tmp_path):
    arts = [_article(i, article_id=f"{i:016x}", source=RFI, section=None, credits=None, roc_code=None,
                     roc_date=None, dateline=None, dateline_place=None, dateline_day=None,
                     dateline_kind=None, reporters=None, published_at=None, feed_date=None)
            for i in range(3)]
    out, text = _build(tmp_path / "rfi", articles=arts)
    assert "No credits in this build." in text
    counts = json.loads((out / "figures" / "counts.json").read_text(encoding="utf-8"))
    assert counts["per_section"] == {"(none)": 3} and counts["dated_by"]["undated"] == 3
    assert CNA in text  # the rejects of the fixture still belong to CNA in the per-source table


def test_manifest_mismatch_is_an_error(tmp_path):
    out = make_dataset(tmp_path / "out")
    m = read_manifest(out)
    m["counts"]["articles"] += 1
    with pytest.raises(ValueError, match="articles"):
        write_dataset_card(out, m)


def test_missing_manifest_keys_do_not_fail(tmp_path):
    out = make_dataset(tmp_path / "out")
    write_dataset_card(out, {})
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "| `no_epoch` | 1 |" in text and "| `empty_file` | 1 |" in text


def test_unknown_source_matches_manifest_key(tmp_path):
    arts = [_article(1), _article(2, source=None), _article(3, source="")]
    out, text = _build(tmp_path / "unk", articles=arts)
    assert "| 1 | (unknown) | 2 | 2 | 0 | 0 |" in text
    assert text.count("(unknown)") == 1


def test_top_credits_count_articles_not_mentions():
    """A person named twice in one article (e.g. as two editors' line) counts once for it."""
    from pipeline.card import _top_credits

    credit_type = ARTICLE_SCHEMA.field("credits").type

    def row(article_id, credits):
        return {"article_id": article_id, "credits": [{"role": r, "name": n} for r, n in credits]}

    rows = [row("a1", [("translator", "陳正健"), ("reviewer", "劉學源"), ("translator", "陳正健")]),
            row("a2", [("translator", "陳正健"), ("editor", "唐佩君")]),
            row("a3", [("translator", "王小明"), ("reviewer", "陳正健")]),
            row("a4", [])]
    table = pa.table({"article_id": [r["article_id"] for r in rows],
                      "credits": pa.array([r["credits"] for r in rows], credit_type)})
    top = _top_credits(table)
    assert top["translator"] == [("陳正健", 2), ("王小明", 1)]
    assert top["reviewer"] == [("劉學源", 1), ("陳正健", 1)]
    assert top["editor"] == [("唐佩君", 1)]
    assert top["compiler"] == [] and top["other"] == []
