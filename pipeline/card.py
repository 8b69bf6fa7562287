"""The dataset card: out_dir/README.md (Hugging Face layout) plus figures/*.png.

Everything is computed in Arrow from the written files and the manifest, so the card always
describes what is on disk. The output is deterministic (no dates, no timings, fixed font, PNG
metadata stripped): rebuilding the same data gives byte-identical files.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.figures import FIGURES, FigureJob, ranked, write_figures
from pipeline.load import explode_credits, read_articles_table
from pipeline.schema import (
    ARTICLE_FIELDS,
    ARTICLE_SCHEMA,
    CREDIT_ROLES,
    PIPELINE_VERSION,
    REJECT_REASONS,
    REJECT_SCHEMA,
    WARNING_CODES,
)

__all__ = ["write_dataset_card", "card_stats", "figure_stats", "FIGURES"]

TAIPEI_OFFSET_MS = 8 * 3600 * 1000  # Taiwan has had no DST since 1979: a fixed UTC+8 is exact
DAY_MS = 86_400_000
TOP_CREDITS = 10
NO_SOURCE = "(unknown)"  # what the build's manifest uses for posts without `author`


# --------------------------------------------------------------------------- statistics


# The bulky columns: the card needs only their coverage, which the build counts while writing
# (manifest["filled"]); they are read only for a manifest without it.
_BULKY = ("text", "paragraphs", "images", "related")
# The columns the card's statistics use besides figure_stats' (which the build computes from its
# key columns before writing); the build hands them over in memory (no re-read).
CARD_COLUMNS = ["article_id", "published_at", "feed_date", "roc_date", "credits", "translators"]


def _read_articles(out: Path, skip: tuple[str, ...]) -> pa.Table:
    cols = [n for n in ARTICLE_SCHEMA.names if n not in skip]
    try:
        return read_articles_table(out, columns=cols)
    except FileNotFoundError:  # a build with 0 articles may write no part file at all
        return ARTICLE_SCHEMA.empty_table().select(cols)


def _read_rejects(out: Path) -> pa.Table:
    path = out / "rejects.parquet"
    if not path.exists():
        return REJECT_SCHEMA.empty_table()
    # one file: ParquetFile, not read_table (which imports pyarrow.dataset: ~0.25 s of CPU)
    with pq.ParquetFile(path) as f:
        return f.read(columns=["reason"])


def value_counts(arr: pa.Array | pa.ChunkedArray) -> dict[Any, int]:
    """{value: rows holding it} over an Arrow column, nulls included (as None)."""
    if len(arr) == 0:
        return {}
    vc = pc.value_counts(arr)
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))


def _coverage(table: pa.Table, n_total: int) -> dict[str, float | None]:
    cov: dict[str, float | None] = {}
    for name in ARTICLE_SCHEMA.names:
        if n_total == 0:
            cov[name] = None
            continue
        if name == "text":  # not read (see _read_articles): text is non-empty iff paragraphs is
            name_src = "paragraphs"
        else:
            name_src = name
        col = table.column(name_src)
        typ = col.type
        if pa.types.is_list(typ):
            ok = pc.sum(pc.greater(pc.list_value_length(col), 0)).as_py() or 0
        elif pa.types.is_string(typ):
            ok = pc.sum(pc.greater(pc.utf8_length(col), 0)).as_py() or 0
        else:
            ok = len(col) - col.null_count
        cov[name] = ok / n_total
    return cov


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "strftime") and hasattr(value, "hour"):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.isoformat()


def _min_max(col: pa.ChunkedArray) -> tuple[str | None, str | None]:
    if len(col) == 0 or col.null_count == len(col):
        return None, None
    mm = pc.min_max(col)
    return _iso(mm["min"].as_py()), _iso(mm["max"].as_py())


def _per_day(table: pa.Table) -> tuple[dict[str, int], dict[str, int]]:
    """Articles per Asia/Taipei day: by published_at, else feed_date; plus how each was dated."""
    pub = table.column("published_at")
    feed = table.column("feed_date")
    when = pc.coalesce(pub, feed).cast(pa.int64()).to_numpy(zero_copy_only=False)
    dated_by = {
        "published_at": len(pub) - pub.null_count,
        "feed_date": int(pc.sum(pc.and_(pc.is_null(pub), pc.is_valid(feed))).as_py() or 0),
    }
    valid = when[~np.isnan(when)] if when.dtype.kind == "f" else when
    dated_by["undated"] = len(table) - len(valid)
    if len(valid) == 0:
        return {}, dated_by
    days = np.floor_divide(valid.astype(np.int64) + TAIPEI_OFFSET_MS, DAY_MS)
    uniq, counts = np.unique(days, return_counts=True)
    labels = np.array(uniq, dtype="datetime64[D]").astype(str)
    return {str(d): int(c) for d, c in zip(labels, counts, strict=True)}, dated_by


def _top_credits(table: pa.Table) -> dict[str, list[tuple[str, int]]]:
    flat = explode_credits(table.select(["article_id", "credits"]))
    out: dict[str, list[tuple[str, int]]] = {}
    if flat.num_rows == 0:
        return {r: [] for r in CREDIT_ROLES}
    # articles per (role, name), a person named twice in one article counted once. Counted in
    # Python (a few credits per article): Table.group_by imports pyarrow's query engine, whose
    # import alone cost the build ~0.25 s of CPU.
    triples = set(zip(flat.column("role").to_pylist(), flat.column("name").to_pylist(),
                      flat.column("article_id").to_pylist(), strict=True))
    per_role: dict[str, Counter[str]] = {role: Counter() for role in CREDIT_ROLES}
    for role, name, _article in triples:
        if role in per_role and name is not None:
            per_role[role][name] += 1
    for role in CREDIT_ROLES:
        out[role] = ranked(per_role[role])[:TOP_CREDITS]
    return out


def figure_stats(table: pa.Table, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the figures draw (pipeline.figures.FIGURE_STATS), from a table with the articles'
    source, section, published_at and feed_date: the build has them before writing any article."""
    per_source_data = value_counts(table.column("source"))
    merged: dict[str, int] = {}
    for k, v in per_source_data.items():  # null and "" both count as unknown, as in the manifest
        merged[k or NO_SOURCE] = merged.get(k or NO_SOURCE, 0) + v
    per_source_data = merged
    manifest_sources = (manifest.get("counts", {}) or {}).get("per_source", {}) or {}
    # Rank: by articles (from the data), then sources that only had rejects/duplicates.
    order = [s for s, _ in ranked(per_source_data)]
    order += sorted(s for s in manifest_sources if s not in per_source_data)
    per_day, dated_by = _per_day(table)
    return {"n_articles": table.num_rows, "source_order": order, "per_source_data": per_source_data,
            "per_section": value_counts(table.column("section")), "per_day": per_day, "dated_by": dated_by}


def card_stats(out_dir: str | Path, manifest: dict[str, Any], table: pa.Table | None = None,
               drawn: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the card shows, as plain Python values (also written to figures/counts.json).
    `table`: the articles' CARD_COLUMNS when the caller has them (else read from out_dir);
    `drawn`: figure_stats() of the same articles, when the caller has them (else computed from
    `table`, which then needs source, section, published_at and feed_date)."""
    out = Path(out_dir)
    filled = manifest.get("filled")
    if table is None:
        table = _read_articles(out, _BULKY if filled else ("text",))
    rejects = _read_rejects(out)
    n = table.num_rows
    counts = manifest.get("counts", {}) or {}
    if "articles" in counts and counts["articles"] != n:
        raise ValueError(
            f"manifest says {counts['articles']} articles but {out / 'articles'} holds {n} rows: "
            "the card would contradict the data (was the manifest written for another build?)"
        )

    if drawn is None:
        drawn = figure_stats(table, manifest)
    warn_counts = counts.get("warnings")
    if warn_counts is None:
        warn_counts = value_counts(pc.list_flatten(table.column("warnings")))
    reject_counts = counts.get("rejects_by_reason")
    if reject_counts is None:
        reject_counts = value_counts(rejects.column("reason"))

    pub = table.column("published_at")
    return {
        "totals": {k: counts.get(k) for k in ("inputs", "articles", "rejects", "duplicates")},
        **drawn,
        "per_source_manifest": counts.get("per_source", {}) or {},
        "coverage": ({c: (filled.get(c, 0) / n if n else None) for c in ARTICLE_SCHEMA.names}
                     if filled else _coverage(table, n)),
        "ranges": {
            "published_at": _min_max(pub),
            "feed_date": _min_max(table.column("feed_date")),
            "roc_date": _min_max(table.column("roc_date")),
        },
        "no_published_at": pub.null_count,
        "warnings": dict(warn_counts),
        "rejects_by_reason": dict(reject_counts),
        "n_rejects_file": rejects.num_rows,
        "has_duplicates_file": (out / "duplicates.parquet").exists(),
        "top_credits": _top_credits(table),
        "n_with_credits": int(pc.sum(pc.greater(pc.list_value_length(table.column("credits")), 0)).as_py() or 0)
        if n else 0,
        "n_translated": int(pc.sum(pc.greater(pc.list_value_length(table.column("translators")), 0)).as_py()
                            or 0) if n else 0,
    }


# --------------------------------------------------------------------------- figures


# --------------------------------------------------------------------------- markdown


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]], align: str | None = None) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join((align or "-" * len(header))[i].replace("-", "---").replace("r", "--:")
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: Any) -> str:
    return "–" if x is None else f"{x:,}"


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # JSON strings are valid YAML scalars


def _cna_share(stats: dict[str, Any]) -> str:
    n = stats["n_articles"]
    cna = sum(c for s, c in stats["per_source_data"].items() if "中央社" in s or "CNA" in s)
    if not n:
        return ""
    return f", {_pct(cna / n)} of them from Taiwan's Central News Agency (中央社 CNA)"


def _render(stats: dict[str, Any], manifest: dict[str, Any]) -> str:
    n = stats["n_articles"]
    tot = stats["totals"]
    out: list[str] = []
    add = out.append
    add("---")
    add("pretty_name: " + _yaml_str("CNA and other Chinese-language news feeds (news-beyond-wall archive), cleaned"))
    add("license: other")
    add("language:\n- zh")
    add("multilinguality: monolingual")
    add("task_categories:\n- text-classification\n- text-generation\n- token-classification")
    add("tags:\n- news\n- taiwan\n- central-news-agency\n- translation-credits")
    add(f"size_categories:\n- {_size_category(n)}")
    add("source_datasets:\n- " + _yaml_str("github.com/NodeBE4/news-beyond-wall"))
    add("configs:\n- config_name: default\n  default: true\n  data_files:\n  - split: train\n"
        "    path: articles/*.parquet\n- config_name: rejects\n  data_files:\n  - split: train\n"
        "    path: rejects.parquet")
    add("---\n")

    add("# Clean, credited news articles from the news-beyond-wall feed archive\n")
    add("## What it is\n")
    add(
        f"{_num(n)} news articles, one row per unique article, parsed from the raw Markdown posts of the "
        "third-party feed archive [NodeBE4/news-beyond-wall](https://github.com/NodeBE4/news-beyond-wall)"
        f"{_cna_share(stats)}. Each row has the clean body paragraphs "
        "(no HTML, captions, related links, ads or feed footer), the true publish time, the dateline "
        "(place, day, reporters), the credit block parsed into roles (translator, reviewer, editor, "
        "compiler) and the trailing ROC date code as a calendar date.\n"
    )
    add(f"Built by `{manifest.get('created_by', 'python -m pipeline build')}`, pipeline version "
        f"`{manifest.get('pipeline_version', PIPELINE_VERSION)}`, input fingerprint "
        f"`{manifest.get('input_fingerprint', '–')}`. Files: `articles/*.parquet` (the data), "
        "`rejects.parquet` (one row per input that did not become an article, with the reason), "
        + ("`duplicates.parquet` (inputs collapsed into an existing article), " if stats["has_duplicates_file"]
           else "")
        + "`manifest.json` (counts and timings), this card and `figures/`.\n")

    add("## Source and licence\n")
    add(
        "- The news text, headlines and images are © their publishers (CNA, RFI and the other feeds). "
        "This dataset does **not** grant any licence to them; `license: other` above means exactly that.\n"
        "- The posts come from a third-party archive of RSS feeds, not from the publishers. The archive "
        "records what a feed showed at crawl time: later corrections, deletions and paywalled full text "
        "are not reflected, and items the feed never carried are missing.\n"
        "- Intended for research (text analysis, media studies, who-translates-what). Check the "
        "publishers' terms before any redistribution or commercial use; do not republish the text.\n"
    )

    add("## Schema\n")
    add("Column types are fixed (`pipeline.schema.ARTICLE_SCHEMA`); nothing is inferred.\n")
    add(_table(["column", "type", "nullable", "meaning"],
               [(f"`{name}`", f"`{typ}`", "yes" if nullable else "no", meaning)
                for name, typ, nullable, meaning in ARTICLE_FIELDS]))
    add("")

    add("## Counts\n")
    ok = None
    if all(tot.get(k) is not None for k in ("inputs", "articles", "rejects", "duplicates")):
        ok = tot["inputs"] == tot["articles"] + tot["rejects"] + tot["duplicates"]
    add(f"- inputs: {_num(tot.get('inputs'))}\n- articles: {_num(tot.get('articles', n))}\n"
        f"- rejects: {_num(tot.get('rejects'))}\n- duplicates: {_num(tot.get('duplicates'))}\n")
    if ok is not None:
        add("`inputs == articles + rejects + duplicates` " + ("holds: nothing was silently dropped.\n" if ok
            else "does **not** hold for this build: treat the counts with care.\n"))
    add("### Per source\n")
    add("`#` is the number used for the source in the figures.\n")
    psm = stats["per_source_manifest"]
    rows = []
    for i, src in enumerate(stats["source_order"], 1):
        m = psm.get(src, {})
        missing = 0 if m else None  # the build may leave zero counts out of a source's entry
        rows.append((i, src, _num(m.get("inputs", missing)), _num(stats["per_source_data"].get(src, 0)),
                     _num(m.get("rejects", missing)), _num(m.get("duplicates", missing))))
    if rows:
        add(_table(["#", "source", "inputs", "articles", "rejects", "duplicates"], rows, "r-rrrr"))
    else:
        add("No sources: the dataset is empty.")
    add("")

    add("## Date range\n")
    rng = stats["ranges"]
    add(_table(["column", "min", "max"],
               [(f"`{c}`", rng[c][0] or "–", rng[c][1] or "–") for c in ("published_at", "feed_date", "roc_date")]))
    add(f"\nArticles without `published_at` (no epoch comment in the post): {_num(stats['no_published_at'])}. "
        "`feed_date` is the archiver's date and can lag or be clamped to the crawl time.\n")

    add("## Coverage\n")
    add("Share of articles where the column is filled: non-null, and for strings and lists non-empty.\n")
    add(_table(["column", "filled"], [(f"`{c}`", _pct(v)) for c, v in stats["coverage"].items()], "-r"))
    add("")

    add("## Rejects\n")
    rej = stats["rejects_by_reason"]
    codes = list(REJECT_REASONS) + sorted(k for k in rej if k not in REJECT_REASONS)
    add(f"{_num(sum(rej.values()))} input files did not become articles "
        "(details in `rejects.parquet`: `source_path`, `reason`, `detail`).\n")
    add(_table(["reason", "count", "meaning"],
               [(f"`{c}`", _num(rej.get(c, 0)), REJECT_REASONS.get(c, "(unknown code)")) for c in codes], "-r-"))
    add("")

    add("## Warnings\n")
    add("Articles that were odd but usable carry these codes in the `warnings` list.\n")
    wc = stats["warnings"]
    codes = list(WARNING_CODES) + sorted(k for k in wc if k not in WARNING_CODES)
    add(_table(["warning", "articles", "meaning"],
               [(f"`{c}`", _num(wc.get(c, 0)), WARNING_CODES.get(c, "(unknown code)")) for c in codes], "-r-"))
    add("")

    add("## Credits\n")
    add(f"{_num(stats['n_with_credits'])} articles carry a parsed credit block; {_num(stats['n_translated'])} "
        "name a translator (translated wire copy). Busiest people per role (articles credited):\n")
    top = stats["top_credits"]
    roles = [r for r in ("translator", "reviewer", "editor", "compiler") if top.get(r)]
    if roles:
        depth = max(len(top[r]) for r in roles)
        rows = [[i + 1] + [f"{top[r][i][0]} ({top[r][i][1]:,})" if i < len(top[r]) else "" for r in roles]
                for i in range(depth)]
        add(_table(["rank"] + roles, rows, "r" + "-" * len(roles)))
    else:
        add("No credits in this build.")
    add("\nNames are as written: the same person can appear in traditional and simplified characters "
        "(e.g. in RFI's republished copy).\n")

    add("## Figures\n")
    db = stats["dated_by"]
    add(f"![Articles per day]({FIGURES['per_day']})\n")
    add(f"Articles per calendar day in Asia/Taipei: {_num(db['published_at'])} dated by `published_at`, "
        f"{_num(db['feed_date'])} by `feed_date` (no epoch), {_num(db['undated'])} undated.\n")
    add(f"![Articles per section]({FIGURES['per_section']})\n")
    add(f"![Articles per source]({FIGURES['per_source']})\n")
    add(f"Every figure counts all {_num(n)} articles; the plotted numbers are in `figures/counts.json`.\n")

    add("## How to load\n")
    add("pandas, with the dataset's dtypes (timestamps in UTC, dates as dates, lists as Arrow lists) and "
        "filters pushed down to Parquet:\n")
    add("```python\nfrom pipeline import load, load_credits\n\n"
        "df = load(\"outputs\")\n"
        "cna_oct = load(\"outputs\", filters=[(\"source\", \"==\", \"(臺)中央社CNA\"),\n"
        "                                    (\"published_at\", \">=\", \"2020-10-01\"),\n"
        "                                    (\"published_at\", \"<\", \"2020-11-01\")])\n"
        "credits = load_credits(\"outputs\")  # one row per (article, role, name)\n```\n")
    add("DuckDB:\n")
    add("```sql\nSELECT source, count(*) FROM 'outputs/articles/*.parquet' GROUP BY source;\n"
        "SELECT * FROM 'outputs/articles/*.parquet' WHERE published_at >= TIMESTAMPTZ '2020-10-01';\n```\n")
    add("Polars:\n")
    add("```python\nimport polars as pl\ndf = pl.read_parquet(\"outputs/articles/*.parquet\")\n```\n")
    add("Hugging Face `datasets`:\n")
    add("```python\nfrom datasets import load_dataset\n"
        "ds = load_dataset(\"parquet\", data_files=\"outputs/articles/*.parquet\", split=\"train\")\n```\n")

    add("## Known limits\n")
    add(
        "- Coverage is what the feed archive kept: gaps in days or feeds are gaps in the archive, not "
        "quiet news days. Non-CNA feeds are samples, not complete.\n"
        "- `published_at` comes from the post's epoch comment and is null without one; `feed_date` is "
        "clamped to the crawl time by the archiver and is not a publish time.\n"
        "- Days in the figures are Asia/Taipei (UTC+8); timestamps in the data are UTC.\n"
        "- `section` exists only for CNA URLs. Datelines, reporters and credits are parsed with rules "
        "tuned on CNA copy; other feeds mostly have none, and unusual credit blocks may be missed "
        "(`credits_unparsed`).\n"
        "- Names are not normalised across scripts or spellings; one person can appear under two names.\n"
        "- `roc_date` is the date code as written and can disagree with `published_at` "
        "(`roc_date_far_from_published`); `dateline_day` is the day as written, not checked.\n"
        "- Duplicates (the same article archived more than once) are collapsed to one row; their count "
        "is in the manifest. Corrections to an article are not tracked.\n"
        "- Body text is what the feed carried, which for some feeds is a summary, not the full article.\n"
    )
    return "\n".join(out).rstrip() + "\n"


def write_dataset_card(out_dir: str | Path, manifest: dict[str, Any], table: pa.Table | None = None,
                       figures: FigureJob | None = None, drawn: dict[str, Any] | None = None) -> None:
    """Write out_dir/README.md and out_dir/figures/*.png describing the build in out_dir.
    `figures`: the figures, already being drawn from the same data (the build starts them
    before it writes the articles); else they are drawn here.

    Raises ValueError when the manifest's article count disagrees with the Parquet files.
    """
    out = Path(out_dir)
    stats = card_stats(out, manifest, table, drawn)
    if figures is not None:
        figures.wait()
    else:
        write_figures(out, stats)
    text = _render(stats, manifest)
    (out / "README.md").write_text(text, encoding="utf-8")
