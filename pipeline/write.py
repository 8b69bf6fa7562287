"""Write stage (the writer at the edge): shards -> deduplicated, ordered Parquet dataset.

Shards are sorted runs; the merge picks one winner per article id (latest published_at,
then latest feed_date, then greatest source_path), orders winners by (published_at, article_id)
and streams them into fixed-size row groups and part files. Memory stays bounded by
WRITER_THREADS x (shards open at once x SHARD_CHUNK_ROWS + one row group), plus the key columns
(a few hundred bytes per article) that plan the merge.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.assemble import add_derived_columns
from pipeline.batches import KEY_COLUMNS, SHARD_CHUNK_ROWS
from pipeline.cache import ShardStore
from pipeline.schema import ARTICLE_SCHEMA, DUPLICATE_SCHEMA, REJECT_SCHEMA, SHARD_SCHEMA

ROW_GROUP_ROWS = 1024
# Rows per part file: small enough that consecutive parts are encoded in parallel (2 cores here).
PART_ROWS = 4 * ROW_GROUP_ROWS
WRITER_THREADS = 2
KEY_SCHEMA = pa.schema([ARTICLE_SCHEMA.field(c) for c in KEY_COLUMNS])

# Fixed writer settings: same input -> same bytes.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,  # level 3 saves ~20% of disk for ~60% more write time
    "use_dictionary": ["source", "section", "dateline_kind", "dateline_place", "warnings",
                       "translators", "reviewers", "editors", "compilers", "reporters"],
    "write_statistics": ["article_id", "source", "section", "published_at", "feed_date", "roc_date",
                         "dateline_day", "source_path"],
    "data_page_size": 1 << 20,
    "write_page_index": False,
    "store_schema": True,
}


class _ShardCursor:
    """Record batches of one shard, read in increasing order; the last one read is kept (the next
    row group often starts in it)."""

    def __init__(self, store: ShardStore, key: str) -> None:
        self.reader = store.open(key)
        self.cached_index = -1
        self.cached: pa.RecordBatch | None = None

    def batch(self, i: int) -> pa.RecordBatch:
        if i != self.cached_index or self.cached is None:
            self.cached_index, self.cached = i, self.reader.get_batch(i)
        return self.cached


class KeyCollector:
    """The key columns of shards, read as each shard is ready (while the workers still run,
    rather than all at once after them)."""

    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self.tables: dict[str, pa.Table] = {}

    def add(self, key: str) -> None:
        if key not in self.tables:
            self.tables[key] = self.store.read_columns(key, KEY_COLUMNS)

    def table(self, keys: list[str]) -> pa.Table:
        """Key columns of every shard (in `keys` order), with (shard, row) coordinates; shards not
        read yet (e.g. reused from the cache) are read now. The collector lets go of its tables."""
        tables, self.tables = self.tables, {}
        parts = []
        for shard_no, key in enumerate(keys):
            table = tables.pop(key, None)
            if table is None:
                table = self.store.read_columns(key, KEY_COLUMNS)
            parts.append(_with_coordinates(table, shard_no))
        if not parts:
            schema = KEY_SCHEMA.append(pa.field("shard", pa.int32())).append(pa.field("row", pa.int64()))
            return schema.empty_table()
        return pa.concat_tables(parts)


def _with_coordinates(table: pa.Table, shard_no: int) -> pa.Table:
    """A shard's key columns plus its number and each row's number in it."""
    n = table.num_rows
    # numpy, not range(): pa.array(range) makes pyarrow import pandas (0.25 s) to inspect it
    table = table.append_column("shard", pa.array(np.full(n, shard_no, dtype=np.int32)))
    return table.append_column("row", pa.array(np.arange(n, dtype=np.int64)))


# What the build needs of each winner after the dedup: where it is (shard, row), and what the
# manifest and the card count. Its path and hash are only needed for the few ids with copies.
WINNER_COLUMNS = ["article_id", "published_at", "feed_date", "source", "section", "warnings", "shard", "row"]


def deduplicate(keys: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split key rows into (winners in dataset order: WINNER_COLUMNS, duplicates table)."""
    if keys.num_rows == 0:
        return keys.select(WINNER_COLUMNS), DUPLICATE_SCHEMA.empty_table()
    # Best copy first within each article id; sorting a narrow view, then one take per result,
    # keeps the number of full copies of the key table at one.
    order = pc.sort_indices(keys.select(["article_id", "published_at", "feed_date", "source_path"]),
                            sort_keys=[("article_id", "ascending", "at_end"), ("published_at", "descending", "at_end"),
                                       ("feed_date", "descending", "at_end"),
                                       ("source_path", "descending", "at_end")])
    ids = keys.column("article_id").take(order)
    # the first row of each id is its winner (Arrow compare of neighbours: no Python objects)
    n = len(ids)
    same_as_previous = pc.equal(ids.slice(1), ids.slice(0, n - 1)).combine_chunks()
    mask = pc.invert(pa.concat_arrays([pa.array([False]), same_as_previous.fill_null(False)]))
    winner_idx = order.filter(mask)
    narrow = keys.select(["published_at", "article_id"]).take(winner_idx)
    final = pc.sort_indices(narrow, sort_keys=[("published_at", "ascending", "at_end"),
                                               ("article_id", "ascending", "at_end")])
    del narrow
    winners = keys.select(WINNER_COLUMNS).take(winner_idx.take(final))
    losers = keys.take(order.filter(pc.invert(mask)))
    # which file was kept, for each dropped copy: only the few ids with copies are looked up
    dup_ids = pc.unique(losers.column("article_id"))
    kept_idx = winner_idx.filter(pc.is_in(ids.filter(mask), value_set=dup_ids))
    kept = keys.select(["article_id", "source_path"]).take(kept_idx)
    kept_path = dict(zip(kept.column("article_id").to_pylist(), kept.column("source_path").to_pylist(),
                         strict=True))
    duplicates = pa.table({
        "source_path": losers.column("source_path"),
        "article_id": losers.column("article_id"),
        "kept_source_path": pa.array([kept_path[a] for a in losers.column("article_id").to_pylist()],
                                     pa.string()),
        "published_at": losers.column("published_at"),
        "content_sha256": losers.column("content_sha256"),
    }, schema=DUPLICATE_SCHEMA)
    return winners, duplicates.sort_by([("source_path", "ascending")])


def filled_counts(table: pa.Table) -> dict[str, int]:
    """Per column, rows holding a value: non-null, and non-empty for strings and lists."""
    counts = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_list(col.type):
            counts[name] = int(pc.sum(pc.greater(pc.list_value_length(col), 0)).as_py() or 0)
        elif pa.types.is_string(col.type):
            counts[name] = int(pc.sum(pc.greater(pc.utf8_length(col), 0)).as_py() or 0)
        else:
            counts[name] = len(col) - col.null_count
    return counts


def write_articles(store: ShardStore, keys: list[str], winners: pa.Table, out_dir: Path,
                   observers: tuple[Callable[[int, pa.Table], None], ...] = ()) -> list[str]:
    """Stream the winners (their `shard` and `row` columns: where each article is), in order, into
    out_dir/articles/part-NNNNN.parquet. Returns file names.

    Each part file is gathered and written by one of WRITER_THREADS threads (pyarrow's take and
    Parquet encoder release the GIL), row group after row group, so a part's bytes never depend on
    the threads; each thread holds one row group at a time. Every group is shown to `observers`
    as (the group's first row number in the dataset, group) before it is written, from the part's
    thread: observers must be thread-safe and not depend on the order groups arrive in.
    """
    articles_dir = out_dir / "articles"
    articles_dir.mkdir(parents=True, exist_ok=True)
    # numpy, not Python lists, for the whole plan; lists one row group at a time
    shards = winners.column("shard").to_numpy()
    rows = winners.column("row").to_numpy()
    starts = range(0, max(len(shards), 1), PART_ROWS)
    names = [f"part-{start // PART_ROWS:05d}.parquet" for start in starts]
    with ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool:
        futures = [pool.submit(_write_part, store, keys, shards[start:start + PART_ROWS],
                               rows[start:start + PART_ROWS], start,
                               articles_dir / name, observers)
                   for start, name in zip(starts, names, strict=True)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return names


def _write_part(store: ShardStore, keys: list[str], shards: Any, rows: Any, first_row: int, path: Path,
                observers: tuple[Callable[[int, pa.Table], None], ...]) -> None:
    """One part file: its rows (shard and row numbers, numpy) in row groups of ROW_GROUP_ROWS."""
    cursors: dict[int, _ShardCursor] = {}
    last_group: dict[int, int] = {}  # shard -> the last of this part's row groups that needs it
    for start in range(0, len(shards), ROW_GROUP_ROWS):
        for s in shards[start:start + ROW_GROUP_ROWS].tolist():
            last_group[s] = start
    with pq.ParquetWriter(path, ARTICLE_SCHEMA, **PARQUET_OPTIONS) as writer:
        if len(shards) == 0:  # no articles: a valid file with the schema and no rows
            writer.write_table(ARTICLE_SCHEMA.empty_table())
        for start in range(0, len(shards), ROW_GROUP_ROWS):
            stop = start + ROW_GROUP_ROWS
            group = _gather(store, keys, cursors, shards[start:stop].tolist(), rows[start:stop].tolist())
            for observe in observers:
                observe(first_row + start, group)
            writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
            del group
            for s in [s for s in cursors if last_group[s] <= start]:
                del cursors[s]  # shards are near-sorted in time: most finish early, release them


class FilledCounter:
    """Rows holding a value, per column, over the groups observed (the card's coverage)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(ARTICLE_SCHEMA.names, 0)
        self._lock = threading.Lock()

    def __call__(self, first_row: int, group: pa.Table) -> None:
        counts = filled_counts(group)
        with self._lock:
            for name, n in counts.items():
                self.counts[name] += n


class ColumnCollector:
    """Keeps the small columns of every observed group (what the card charts and ranks)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.parts: dict[int, pa.Table] = {}  # first row number -> its columns (dict writes are atomic)

    def __call__(self, first_row: int, group: pa.Table) -> None:
        self.parts[first_row] = group.select(self.columns)

    def table(self) -> pa.Table:
        """The collected columns, in dataset order."""
        schema = pa.schema([ARTICLE_SCHEMA.field(c) for c in self.columns])
        if not self.parts:
            return schema.empty_table()
        return pa.concat_tables([self.parts[k] for k in sorted(self.parts)]).combine_chunks()


def _gather(store: ShardStore, keys: list[str], cursors: dict[int, _ShardCursor],
            shards: list[int], rows: list[int]) -> pa.Table:
    """Rows (shard, row) in the given order: the record batches holding them side by side (no
    copy), then one take."""
    batches: list[pa.RecordBatch] = []
    where: dict[tuple[int, int], int] = {}  # (shard, batch number) -> its first row in `batches`
    size = 0
    take: list[int] = []
    for s, r in zip(shards, rows, strict=True):
        i = r // SHARD_CHUNK_ROWS
        base = where.get((s, i))
        if base is None:
            cursor = cursors.get(s)
            if cursor is None:
                cursor = cursors[s] = _ShardCursor(store, keys[s])
            batch = cursor.batch(i)
            base = where[(s, i)] = size
            size += batch.num_rows
            batches.append(batch)
        take.append(base + r - i * SHARD_CHUNK_ROWS)
    table = pa.Table.from_batches(batches, schema=SHARD_SCHEMA)
    return add_derived_columns(table.take(pa.array(take, pa.int64())).combine_chunks())


def write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", compression_level=3, store_schema=True)


def write_rejects(rejects: list[dict[str, Any]], out_dir: Path) -> None:
    rejects = sorted(rejects, key=lambda r: r["source_path"])
    write_table(pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA), out_dir / "rejects.parquet")


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
