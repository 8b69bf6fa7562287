"""The shared corpus, built once: counts add up and the CNA fields are found wherever the raw
posts carry them. Detection here is deliberately independent of the pipeline's own rules:
loose regexes over the raw HTML."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

CNA = "(臺)中央社CNA"
# A credit bracket with a role label, closing the last <p> text before the code (loose).
RAW_CREDIT_RE = re.compile(r"[（(]\s*(?:譯者|译者|核稿|編輯|编辑|編譯|编译|編緝)\s*[：:，,；;]")
# A trailing ROC-like code: 6-8 digits right after a closing bracket, at the end of a paragraph.
RAW_CODE_RE = re.compile(r"[）)]\s*。?\s*(\d{6,8})\s*(?:</p>|<br|$)")
BOILERPLATE = ("获取更多RSS", "feedx.net", "adslot", "cna2018_article", "延伸閱讀", "picinfo", "<div", "<p>")


def _articles(out: Path):
    return pq.read_table(out / "articles")


def _last_paragraph_html(raw: str) -> str:
    """The raw text of the last <p> that holds text, before the 延伸閱讀 box and ads."""
    body = raw.split("moreArticle", 1)[0].split("bottomArticleBanner", 1)[0]
    paras = [p for p in re.findall(r"<p[^>]*>(.*?)</p>", body, re.S) if re.sub(r"<[^>]+>", "", p).strip()]
    return re.sub(r"<[^>]+>", "", paras[-1]) if paras else ""


def test_manifest_adds_up(corpus_build: Path, corpus_dir: Path) -> None:
    manifest = json.loads((corpus_build / "manifest.json").read_text(encoding="utf-8"))
    c = manifest["counts"]
    n_files = sum(1 for p in (corpus_dir / "archived").rglob("*.md"))
    assert c["inputs"] == n_files == 21816
    assert c["inputs"] == c["articles"] + c["rejects"] + c["duplicates"]
    assert _articles(corpus_build).num_rows == c["articles"]
    assert pq.read_table(corpus_build / "rejects.parquet").num_rows == c["rejects"]
    assert pq.read_table(corpus_build / "duplicates.parquet").num_rows == c["duplicates"]
    for source, counts in c["per_source"].items():
        assert counts["inputs"] == counts["articles"] + counts.get("rejects", 0) + counts.get("duplicates", 0), source


def test_cna_credits_and_codes_found(corpus_build: Path, corpus_dir: Path) -> None:
    table = _articles(corpus_build).select(["source", "source_path", "credits", "roc_code", "credit_line"])
    table = table.filter(pc.equal(table.column("source"), CNA))
    missing_credits, missing_code = [], []
    for row in table.to_pylist():
        raw = (corpus_dir / row["source_path"]).read_text(encoding="utf-8", errors="replace")
        last = _last_paragraph_html(raw)
        if RAW_CREDIT_RE.search(last) and not row["credits"]:
            missing_credits.append(row["source_path"])
        if RAW_CODE_RE.search(last + "</p>") and not row["roc_code"]:
            missing_code.append(row["source_path"])
    assert table.num_rows > 17000
    assert missing_credits == []
    assert missing_code == []


def _visible_body_text(path: Path) -> str:
    """Raw body text with link boxes, captions and attributes (alt=) removed."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    raw = re.sub(r"<a [^>]*class=.(?:moreArticle-link|insert)[^>]*>.*?</a>", " ", raw, flags=re.S)
    raw = re.sub(r"<(figcaption|small)[^>]*>.*?</\1>", " ", raw, flags=re.S)
    raw = re.sub(r"<div class=.picinfo.>.*?</div>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_no_boilerplate_or_credit_left_in_paragraphs(corpus_build: Path, corpus_dir: Path) -> None:
    table = _articles(corpus_build).select(["paragraphs", "related", "images", "credit_line", "roc_code",
                                            "source_path"])
    bad: list[tuple[str, str]] = []
    for row in table.to_pylist():
        paras = row["paragraphs"]
        text = "\n".join(paras)
        for marker in BOILERPLATE:
            if marker in text:
                bad.append((row["source_path"], marker))
        titles = {r["title"] for r in row["related"] if r["title"]} & set(paras)
        captions = {i["caption"] for i in row["images"] if i["caption"] and len(i["caption"]) >= 20}
        captions = {c for c in captions if c in text}
        if titles or captions:
            # allowed only where the raw post also has the same words as body text
            visible = _visible_body_text(corpus_dir / row["source_path"])
            if any(t not in visible for t in titles):
                bad.append((row["source_path"], "related title as paragraph"))
            if any(c not in visible for c in captions):
                bad.append((row["source_path"], "caption in text"))
        if row["credit_line"] and any(row["credit_line"] in p and p.endswith(("）", ")")) for p in paras[-3:]):
            bad.append((row["source_path"], "credit block left"))
        if row["roc_code"] and paras and paras[-1].endswith(row["roc_code"]):
            bad.append((row["source_path"], "ROC code left"))
    assert bad == []


@pytest.mark.parametrize("column,minimum", [("credits", 0.95), ("roc_code", 0.97), ("dateline", 0.97)])
def test_cna_coverage(corpus_build: Path, column: str, minimum: float) -> None:
    table = _articles(corpus_build).select(["source", column])
    table = table.filter(pc.equal(table.column("source"), CNA))
    values = table.column(column).to_pylist()
    share = sum(1 for v in values if v) / len(values)
    assert share >= minimum, f"{column}: {share:.3f}"


def test_notebooks_run_on_corpus_build(corpus_build: Path) -> None:
    """`make notebooks` on the real build: every notebook runs clean and draws its figures."""
    from pipeline.notebooks import run_all

    problems = run_all(corpus_build)
    assert problems == []
    executed = sorted((corpus_build / "notebooks").glob("*.ipynb"))
    assert len(executed) >= 2
    for path in executed:
        nb = json.loads(path.read_text(encoding="utf-8"))
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
    analysis = json.loads((corpus_build / "notebooks" / "02_analysis.ipynb").read_text(encoding="utf-8"))
    images = [o for c in analysis["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 4


def test_dataset_card_matches_manifest(corpus_build: Path) -> None:
    manifest = json.loads((corpus_build / "manifest.json").read_text(encoding="utf-8"))
    card = (corpus_build / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n")
    assert f"{manifest['counts']['articles']:,}" in card or str(manifest["counts"]["articles"]) in card
    counts = json.loads((corpus_build / "figures" / "counts.json").read_text(encoding="utf-8"))
    assert counts["articles"] == manifest["counts"]["articles"] == sum(counts["per_source"].values())
    for png in (corpus_build / "figures").glob("*.png"):
        assert png.name in card
