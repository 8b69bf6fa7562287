"""Check a built dataset against the contract (`python -m pipeline validate DIR`).

`validate_dataset(path)` returns a list of problems (empty: valid); a damaged dataset gives
problems, never an exception. Every column of every file is decoded, a row group at a time (a
damaged page in any column makes `load()` fail); only the columns the checks need are kept, so it
runs in about a second on the 21k-post corpus.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.load import dataset_path
from pipeline.schema import ARTICLE_SCHEMA, DUPLICATE_SCHEMA, REJECT_REASONS, REJECT_SCHEMA, WARNING_CODES

# Text that must never survive cleaning.
BOILERPLATE_MARKERS = ("获取更多RSS", "延伸閱讀", "adslot", "<div", "<p>", "picinfo")
UNKNOWN_SOURCE = "(unknown)"
_COUNT_KEYS = ("inputs", "articles", "rejects", "duplicates")
# Columns of articles read by the checks (not the heavy image/related/credit lists).
_ARTICLE_COLUMNS = ["article_id", "source", "published_at", "paragraphs", "text", "dateline_day",
                    "credit_line", "roc_code", "roc_date", "warnings", "source_path"]
_MAX_EXAMPLES = 5


def _examples(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_EXAMPLES])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _MAX_EXAMPLES else "")


def _schema_problems(name: str, actual: pa.Schema, expected: pa.Schema) -> list[str]:
    """The contract's columns must all be there, in its order, with its types and nullability.
    Columns it does not name are accepted (SCHEMA.md: "add columns freely"), wherever they are."""
    actual = actual.remove_metadata()
    if actual.equals(expected):
        return []
    problems = []
    repeated = sorted(n for n, k in Counter(actual.names).items() if k > 1)
    if repeated:
        problems.append(f"{name}: columns appear more than once: {repeated}")
    missing = [n for n in expected.names if n not in actual.names]
    if missing:
        # columns outside the contract are listed as a hint: a missing one may have been renamed
        extra = [n for n in actual.names if n not in expected.names]
        problems.append(f"{name}: columns differ from the contract (missing {missing}, extra {extra})")
    elif [n for n in actual.names if n in expected.names] != expected.names and not repeated:
        problems.append(f"{name}: columns differ from the contract (order differs)")
    for f in expected:
        idx = actual.get_field_index(f.name)
        if idx < 0:
            continue
        a = actual.field(idx)
        if not a.type.equals(f.type):
            problems.append(f"{name}: column {f.name} has type {a.type}, expected {f.type}")
        if a.nullable != f.nullable:
            problems.append(f"{name}: column {f.name} nullable={a.nullable}, expected nullable={f.nullable}")
    return problems


def _reason(exc: Exception) -> str:
    """An exception's message on one line: decoders' messages may hold newlines and control bytes."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(exc)).split())


def _read(path: Path, expected: pa.Schema, problems: list[str], columns: list[str] | None = None
          ) -> pa.Table | None:
    """Schema check, then decode every column (extra ones too) a row group at a time, keeping only
    `columns` (all the contract's by default). None when unreadable."""
    name = path.name
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{name}: not a readable Parquet file ({_reason(exc)})")
        return None
    schema_problems = _schema_problems(name, pf.schema_arrow, expected)
    problems.extend(schema_problems)
    if schema_problems:
        return None
    keep = columns or expected.names
    try:
        # reading only `keep` would miss damage in the other columns; one row group bounds memory
        groups = [pf.read_row_group(i).select(keep) for i in range(pf.num_row_groups)]
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{name}: cannot read rows ({_reason(exc)})")
        return None
    return pa.concat_tables(groups) if groups else pf.schema_arrow.empty_table().select(keep)


def validate_dataset(path: str | Path) -> list[str]:
    """Every way the dataset at `path` (a folder or file:// URL) breaks the contract; [] when it is valid."""
    try:
        root = dataset_path(path)
    except ValueError as exc:
        return [str(exc)]
    if not root.is_dir():
        return [f"dataset folder not found: {root}"]
    problems: list[str] = []

    manifest = _load_manifest(root, problems)

    # -- articles ---------------------------------------------------------------
    articles_dir = root / "articles"
    part_files = sorted(articles_dir.glob("*.parquet")) if articles_dir.is_dir() else []
    if not part_files:
        problems.append("articles/: no *.parquet files")
    tables = []
    for part in part_files:
        t = _read(part, ARTICLE_SCHEMA, problems, _ARTICLE_COLUMNS)
        if t is not None:
            tables.append(t)
    articles = pa.concat_tables(tables) if tables and len(tables) == len(part_files) else None
    if articles is not None:
        problems += _check_articles(articles)

    rejects = _read(root / "rejects.parquet", REJECT_SCHEMA, problems) \
        if (root / "rejects.parquet").is_file() else None
    if rejects is None and not (root / "rejects.parquet").is_file():
        problems.append("rejects.parquet missing")
    duplicates = _read(root / "duplicates.parquet", DUPLICATE_SCHEMA, problems) \
        if (root / "duplicates.parquet").is_file() else None
    if duplicates is None and not (root / "duplicates.parquet").is_file():
        problems.append("duplicates.parquet missing")

    if rejects is not None:
        problems += _check_rejects(rejects)
    if duplicates is not None and articles is not None:
        problems += _check_duplicates(duplicates, articles)
    if articles is not None and rejects is not None and duplicates is not None:
        paths = (articles.column("source_path").to_pylist() + rejects.column("source_path").to_pylist()
                 + duplicates.column("source_path").to_pylist())
        repeated = [p for p, n in Counter(paths).items() if n > 1]
        if repeated:
            problems.append(f"source_path listed more than once across articles, rejects and duplicates: "
                            f"{_examples(sorted(repeated))}")
    if manifest is not None:
        problems += _check_manifest(root, manifest, part_files, articles, rejects, duplicates)
    return problems


def _load_manifest(root: Path, problems: list[str]) -> dict[str, Any] | None:
    """The manifest, with the fields whose shape is wrong reported and left out (so the checks
    can trust the types of what is left); None when it has no usable totals."""
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append("manifest.json missing")
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"manifest.json unreadable or not JSON: {exc}")
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict):
        problems.append("manifest.json has no `counts` object")
        return None
    counts = manifest["counts"]
    bad_totals = [key for key in _COUNT_KEYS if not _is_count(counts.get(key))]
    for key in bad_totals:
        problems.append(f"manifest.json: counts.{key} missing or not a non-negative integer")
    if bad_totals:
        return None
    if "per_source" not in counts:
        problems.append("manifest: counts.per_source missing")
    usable = _without_misshapen(manifest, _TOP_FIELDS, "", problems)
    usable["counts"] = _without_misshapen(counts, _COUNTS_FIELDS, "counts.", problems)
    return usable


def _is_count(value: Any) -> bool:
    # JSON true/false load as bool, an int subclass: not a count
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count_map_problems(where: str, value: Any) -> list[str]:
    """`value` must be an object of name -> count (rejects_by_reason, files, a source's counts)."""
    if not isinstance(value, dict):
        return [f"manifest.json: {where} is not an object (got {type(value).__name__})"]
    bad = sorted(k for k, v in value.items() if not _is_count(v))
    return [f"manifest.json: {where} values not non-negative integers: {_examples(bad)}"] if bad else []


def _per_source_problems(where: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [f"manifest.json: {where} is not an object (got {type(value).__name__})"]
    return [p for src, counts in value.items() for p in _count_map_problems(f"{where}[{src!r}]", counts)]


def _string_list_problems(where: str, value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return []
    return [f"manifest.json: {where} is not a list of strings"]


# Manifest fields the checks read besides the totals, each with its shape check (where, value) -> problems.
ShapeCheck = Callable[[str, Any], list[str]]
_COUNTS_FIELDS: dict[str, ShapeCheck] = {"per_source": _per_source_problems, "rejects_by_reason": _count_map_problems}
_TOP_FIELDS: dict[str, ShapeCheck] = {"articles_files": _string_list_problems, "files": _count_map_problems}


def _without_misshapen(fields: dict[str, Any], shapes: dict[str, ShapeCheck], prefix: str,
                       problems: list[str]) -> dict[str, Any]:
    """A copy of `fields` without the entries of the wrong shape, each reported in `problems`."""
    out = dict(fields)
    for key, shape_problems in shapes.items():
        found = shape_problems(prefix + key, out[key]) if key in out else []
        if found:
            problems.extend(found)
            del out[key]
    return out


def _last_paragraphs(paragraphs: pa.ChunkedArray) -> list[str | None]:
    """The last element of each list (None for null or empty lists)."""
    out: list[str | None] = []
    for chunk in paragraphs.chunks:
        lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_numpy(zero_copy_only=False)
        offsets = chunk.offsets.to_numpy()
        values = chunk.values
        idx = offsets[1:] - 1
        has = lengths > 0
        # take only rows that have a last element; fill the others with None
        taken = values.take(pa.array(idx[has])).to_pylist() if has.any() else []
        it = iter(taken)
        out.extend(next(it) if h else None for h in has)
    return out


def _check_articles(t: pa.Table) -> list[str]:
    problems: list[str] = []
    n = t.num_rows
    ids = t.column("article_id")
    if ids.null_count:
        problems.append(f"articles: {ids.null_count} rows with a null article_id")
    if n and pc.count_distinct(ids, mode="only_valid").as_py() != n - ids.null_count:
        vc = pc.value_counts(pc.drop_null(ids)).flatten()
        dup = pc.filter(vc[0], pc.greater(vc[1], 1)).to_pylist()
        problems.append(f"articles: article_id not unique: {_examples(dup)}")
    if t.column("source_path").null_count:
        problems.append("articles: null source_path")

    # order: (published_at nulls last, article_id)
    if n > 1:
        order = pc.sort_indices(t.select(["published_at", "article_id"]),
                                sort_keys=[("published_at", "ascending", "at_end"), ("article_id", "ascending", "at_end")])
        expected = pa.array(range(n), pa.uint64())
        if not order.equals(expected):
            mism = pc.not_equal(order, expected)
            first = pc.index(mism, True).as_py()
            problems.append(f"articles: rows not ordered by (published_at nulls last, article_id); "
                            f"first out of place at row {first}")

    # roc_date consistent with roc_code
    codes = t.column("roc_code")
    dates = t.column("roc_date")
    both = pc.and_(pc.is_valid(codes), pc.is_valid(dates))
    if pc.any(both).as_py():
        sub_codes = pc.filter(codes, both).to_pylist()
        sub_dates = pc.filter(dates, both).to_pylist()
        bad = []
        for code, d in zip(sub_codes, sub_dates, strict=True):
            try:
                ok = (code.isdigit() and int(code[:-4]) + 1911 == d.year
                      and int(code[-4:-2]) == d.month and int(code[-2:]) == d.day)
            except ValueError:
                ok = False
            if not ok:
                bad.append((code, d.isoformat()))
        if bad:
            problems.append(f"articles: roc_date does not match roc_code (ROC year + 1911): {_examples(bad)}")
    orphan = pc.sum(pc.and_(pc.is_null(codes), pc.is_valid(dates))).as_py() or 0
    if orphan:
        problems.append(f"articles: {orphan} rows have roc_date without roc_code")

    day = t.column("dateline_day")
    bad_days = pc.filter(day, pc.or_(pc.less(day, 1), pc.greater(day, 31)))
    if len(bad_days):
        problems.append(f"articles: dateline_day outside 1-31: {_examples(bad_days.to_pylist())}")

    warnings = set(pc.unique(pc.list_flatten(t.column("warnings"))).to_pylist()) - {None}
    unknown = sorted(warnings - set(WARNING_CODES))
    if unknown:
        problems.append(f"articles: unknown warning codes {unknown}")

    text = t.column("text")
    for marker in BOILERPLATE_MARKERS:
        hits = pc.sum(pc.match_substring(text, marker)).as_py() or 0
        if hits:
            problems.append(f"articles: boilerplate {marker!r} left in the text of {hits} rows")

    paragraphs = t.column("paragraphs")
    joined = pc.binary_join(paragraphs, "\n")
    same = pc.fill_null(pc.equal(joined, text), False)
    both_null = pc.and_(pc.is_null(joined), pc.is_null(text))
    n_bad = n - (pc.sum(pc.or_(same, both_null)).as_py() or 0)
    if n_bad:
        problems.append(f"articles: text != '\\n'.join(paragraphs) in {n_bad} rows")
    empty_paras = pc.sum(pc.equal(pc.utf8_length(pc.list_flatten(paragraphs)), 0)).as_py() or 0
    if empty_paras:
        problems.append(f"articles: {empty_paras} empty paragraphs")

    problems += _check_tail(t)
    return problems


def _check_tail(t: pa.Table) -> list[str]:
    """Credit block and ROC code were cut from the last paragraph."""
    credit = t.column("credit_line")
    code = t.column("roc_code")
    mask = pc.or_(pc.is_valid(credit), pc.is_valid(code))
    if not pc.any(mask).as_py():
        return []
    sub = t.filter(mask)
    lasts = _last_paragraphs(sub.column("paragraphs"))
    ids = sub.column("article_id").to_pylist()
    left_code, left_credit = [], []
    for aid, last, cl, rc in zip(ids, lasts, sub.column("credit_line").to_pylist(),
                                 sub.column("roc_code").to_pylist(), strict=True):
        if last is None:
            continue
        if rc and last.rstrip().endswith(rc):
            left_code.append(aid)
        if cl and any(o + cl + c in last for o, c in (("（", "）"), ("(", ")"), ("(", "）"), ("（", ")"))):
            left_credit.append(aid)
    problems = []
    if left_code:
        problems.append(f"articles: roc_code left at the end of the last paragraph: {_examples(left_code)}")
    if left_credit:
        problems.append(f"articles: credit block left in the last paragraph: {_examples(left_credit)}")
    return problems


def _check_rejects(rejects: pa.Table) -> list[str]:
    problems = []
    reasons = set(pc.unique(rejects.column("reason")).to_pylist()) - {None}
    unknown = sorted(reasons - set(REJECT_REASONS))
    if unknown:
        problems.append(f"rejects: unknown reason codes {unknown}")
    return problems


def _check_duplicates(duplicates: pa.Table, articles: pa.Table) -> list[str]:
    problems = []
    if not duplicates.num_rows:
        return problems
    ids = set(articles.column("article_id").to_pylist())
    kept = set(articles.column("source_path").to_pylist())
    orphans = [a for a in duplicates.column("article_id").to_pylist() if a not in ids]
    if orphans:
        problems.append(f"duplicates: article_id not among the articles: {_examples(orphans)}")
    lost = [p for p in duplicates.column("kept_source_path").to_pylist() if p not in kept]
    if lost:
        problems.append(f"duplicates: kept_source_path not among the articles: {_examples(lost)}")
    return problems


def _check_manifest(root: Path, manifest: dict[str, Any], part_files: list[Path], articles: pa.Table | None,
                    rejects: pa.Table | None, duplicates: pa.Table | None) -> list[str]:
    problems: list[str] = []
    c = manifest["counts"]
    if c["inputs"] != c["articles"] + c["rejects"] + c["duplicates"]:
        problems.append(f"manifest: inputs {c['inputs']} != articles {c['articles']} + rejects {c['rejects']} "
                        f"+ duplicates {c['duplicates']}")
    per_source = c.get("per_source")  # absent or misshapen: reported by _load_manifest
    if per_source is not None:
        for src, sc in per_source.items():
            got = {k: sc.get(k, 0) for k in _COUNT_KEYS}
            if got["inputs"] != got["articles"] + got["rejects"] + got["duplicates"]:
                problems.append(f"manifest: source {src!r}: inputs {got['inputs']} != articles + rejects + duplicates")
        for key in _COUNT_KEYS:
            total = sum(sc.get(key, 0) for sc in per_source.values())
            if total != c[key]:
                problems.append(f"manifest: per-source {key} add up to {total}, counts.{key} is {c[key]}")

    for key, table in (("articles", articles), ("rejects", rejects), ("duplicates", duplicates)):
        if table is not None and table.num_rows != c[key]:
            problems.append(f"manifest: counts.{key} is {c[key]} but the dataset has {table.num_rows} rows")
    if articles is not None and per_source is not None:
        srcs = Counter(s if s is not None else UNKNOWN_SOURCE for s in articles.column("source").to_pylist())
        for src in set(srcs) | set(per_source):
            want = per_source.get(src, {}).get("articles", 0)
            if srcs.get(src, 0) != want:
                problems.append(f"manifest: source {src!r} has {srcs.get(src, 0)} article rows, manifest says {want}")
    if rejects is not None and "rejects_by_reason" in c:
        got = Counter(rejects.column("reason").to_pylist())
        if dict(got) != {k: v for k, v in c["rejects_by_reason"].items() if v}:
            problems.append(f"manifest: rejects_by_reason {c['rejects_by_reason']} != reject rows {dict(got)}")

    listed = manifest.get("articles_files")
    if listed is not None:
        present = sorted(f"articles/{p.name}" for p in part_files)
        if sorted(listed) != present:
            problems.append(f"manifest: articles_files {listed} != files present {present}")
    for rel, size in sorted(manifest.get("files", {}).items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"manifest: listed file {rel} missing")
        elif p.stat().st_size != size:
            problems.append(f"manifest: file {rel} has {p.stat().st_size} bytes, manifest says {size}")
    return problems
