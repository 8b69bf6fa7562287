"""Build a small synthetic output folder (articles/, rejects.parquet, manifest.json) for tests.

It mimics what `python -m pipeline build` writes, with hand-made rows covering the cases the
analyst tools must handle: two feeds, credits with several roles, null epochs, null ROC dates,
lists that are empty or null. No real corpus text is used.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import ARTICLE_SCHEMA, PIPELINE_VERSION, REJECT_SCHEMA

CNA = "(臺)中央社CNA"
RFI = "RFI - 简体中文"
UTC = dt.timezone.utc


def _ts(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


def _credits(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "name": n} for r, n in pairs]


def _article(i: int, **kw: Any) -> dict[str, Any]:
    """One row with every ARTICLE_SCHEMA column; kw overrides the defaults."""
    credits = kw.pop("credits", [])
    row: dict[str, Any] = {
        "article_id": f"2020100{i:05d}",
        "source": CNA,
        "url": f"https://www.cna.com.tw/news/aopl/2020100{i:05d}.aspx",
        "section": "aopl",
        "title": f"標題 {i}",
        "published_at": _ts(2020, 10, 1, 3),
        "feed_date": _ts(2020, 10, 1, 3, 5),
        "paragraphs": [f"第一段 {i}", f"第二段 {i}"],
        "dateline": "中央社記者沈佩瑤台北1日電",
        "dateline_place": "台北",
        "dateline_day": 1,
        "dateline_kind": "電",
        "reporters": ["沈佩瑤"],
        "credit_line": None,
        "credits": credits,
        "roc_code": "1091001",
        "roc_date": dt.date(2020, 10, 1),
        "images": [],
        "related": [],
        "warnings": [],
        "source_path": f"archived/2020-10-01/post {i}.md",
        "content_sha256": f"{i:064x}",
    }
    row.update(kw)
    roles = {"translator": "translators", "reviewer": "reviewers", "editor": "editors", "compiler": "compilers"}
    for role, col in roles.items():
        row.setdefault(col, [c["name"] for c in credits or [] if c["role"] == role])
    if row["credit_line"] is None and credits:
        row["credit_line"] = "/".join(f"{c['role']}：{c['name']}" for c in credits)
    row["text"] = "\n".join(row["paragraphs"]) if row["paragraphs"] is not None else None
    return row


def sample_articles() -> list[dict[str, Any]]:
    """Eight articles: six CNA (three sections), two RFI (no section, one without epoch)."""
    return [
        _article(1, credits=_credits(("translator", "陳正健"), ("reviewer", "劉學源"))),
        _article(
            2,
            section="firstnews",
            published_at=_ts(2020, 10, 1, 15, 30),  # 23:30 in Taipei: still Oct 1 there
            credits=_credits(("editor", "唐佩君"), ("editor", "呂佳蓉")),
            images=[{"url": "https://img/1.jpg", "caption": "圖說"}],
        ),
        _article(
            3,
            published_at=_ts(2020, 10, 2, 1),
            roc_code="1091002",
            roc_date=dt.date(2020, 10, 2),
            dateline="中央社亞美尼亞葉里凡1日綜合外電報導",
            dateline_place="亞美尼亞葉里凡",
            dateline_kind="綜合外電報導",
            reporters=[],
            credits=_credits(("translator", "陳正健"), ("reviewer", "張佑之")),
        ),
        _article(
            4,
            section="acn",
            published_at=_ts(2020, 10, 3, 12),
            roc_code="1091010",
            roc_date=dt.date(2020, 10, 10),
            warnings=["roc_date_far_from_published"],
            credits=_credits(("translator", "楊昭彥"), ("reviewer", "劉學源"), ("editor", "張芷瑄")),
            related=[{"url": "https://www.cna.com.tw/news/acn/1.aspx", "title": "延伸"}],
        ),
        _article(
            5,
            published_at=_ts(2020, 10, 5, 8),
            roc_code="1099999",
            roc_date=None,
            warnings=["roc_code_invalid_date"],
            credits=None,
            credit_line=None,
        ),
        _article(
            6,
            section="firstnews",
            published_at=_ts(2020, 10, 5, 9),
            dateline=None,
            dateline_place=None,
            dateline_day=None,
            dateline_kind=None,
            reporters=[],
            warnings=["no_dateline"],
            credits=_credits(("compiler", "陳正健")),
        ),
        _article(
            7,
            article_id="a1b2c3d4e5f60718",
            source=RFI,
            url="https://www.rfi.fr/cn/7",
            section=None,
            published_at=_ts(2020, 10, 2, 6),
            dateline=None,
            dateline_place=None,
            dateline_day=None,
            dateline_kind=None,
            reporters=[],
            roc_code=None,
            roc_date=None,
            credits=_credits(("translator", "陳正健"), ("reviewer", "劉學源")),
            credit_line="译者：陈正健/核稿：刘学源",
        ),
        _article(
            8,
            article_id="0f1e2d3c4b5a6978",
            source=RFI,
            url="https://www.rfi.fr/cn/8",
            section=None,
            published_at=None,
            feed_date=_ts(2020, 10, 4, 10),
            dateline=None,
            dateline_place=None,
            dateline_day=None,
            dateline_kind=None,
            reporters=None,
            roc_code=None,
            roc_date=None,
            warnings=["no_epoch"],
        ),
    ]


def sample_rejects() -> list[dict[str, Any]]:
    return [
        {"source_path": "archived/2020-10-01/empty.md", "reason": "empty_file", "detail": "0 bytes",
         "content_sha256": None, "size_bytes": 0},
        {"source_path": "archived/2020-10-02/nourl.md", "reason": "no_url", "detail": "no `from`",
         "content_sha256": "ab" * 32, "size_bytes": 120},
    ]


def _manifest(articles: list[dict[str, Any]], rejects: list[dict[str, Any]], duplicates: dict[str, int],
              reject_sources: dict[str, str]) -> dict[str, Any]:
    per_source: dict[str, dict[str, int]] = {}

    def bump(src: str, key: str, n: int = 1) -> None:
        d = per_source.setdefault(src, {"inputs": 0, "articles": 0, "rejects": 0, "duplicates": 0})
        d[key] += n
        d["inputs"] += n

    for a in articles:
        bump(a["source"] or "(unknown)", "articles")
    for r in rejects:
        bump(reject_sources.get(r["source_path"], "(unknown)"), "rejects")
    for src, n in duplicates.items():
        bump(src, "duplicates", n)
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    warnings: dict[str, int] = {}
    for a in articles:
        for w in a["warnings"] or []:
            warnings[w] = warnings.get(w, 0) + 1
    n_dup = sum(duplicates.values())
    return {
        "pipeline_version": PIPELINE_VERSION,
        "input": "/data/raw",
        "input_fingerprint": "0" * 64,
        "counts": {
            "inputs": len(articles) + len(rejects) + n_dup,
            "articles": len(articles),
            "rejects": len(rejects),
            "duplicates": n_dup,
            "per_source": per_source,
            "rejects_by_reason": by_reason,
            "warnings": warnings,
        },
        "cache": {"reused": 0, "processed": len(articles) + len(rejects) + n_dup},
        "timings_s": {"discover": 0.01, "process": 0.2, "write": 0.05, "total": 0.26},
        "created_by": "python -m pipeline build",
    }


def make_dataset(root: Path, articles: list[dict[str, Any]] | None = None, parts: int = 2,
                 rejects: list[dict[str, Any]] | None = None) -> Path:
    """Write a dataset folder under root and return its path.

    parts > 1 splits the articles over several Parquet files, like a big build does.
    articles=[] gives an empty dataset (one empty part file, as the build writes).
    """
    out = Path(root)
    arts = sample_articles() if articles is None else articles
    rejs = sample_rejects() if rejects is None else rejects
    (out / "articles").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(arts, schema=ARTICLE_SCHEMA)
    parts = max(1, min(parts, len(arts)))
    step = -(-len(arts) // parts) if arts else 0
    for p in range(parts):
        chunk = table.slice(p * step, step) if arts else table
        pq.write_table(chunk, out / "articles" / f"part-{p:05d}.parquet")
    pq.write_table(pa.Table.from_pylist(rejs, schema=REJECT_SCHEMA), out / "rejects.parquet")
    dups = {CNA: 1} if arts else {}
    manifest = _manifest(arts, rejs, dups, {r["source_path"]: CNA for r in rejs})
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def read_manifest(out: Path) -> dict[str, Any]:
    return json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))
