"""A build: discover -> batch -> (engine: parse, clean, extract, assemble per post) -> write.

This module wires the stages together and does the bookkeeping (cache, counts, manifest,
atomic publication). It holds no extraction logic.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.batches import (
    Batch,
    BatchSettings,
    code_fingerprint,
    fix_mmap_threshold,
    make_batches,
    use_system_allocator,
)
from pipeline.cache import ShardStore
from pipeline.card import CARD_COLUMNS, figure_stats, value_counts, write_dataset_card
from pipeline.discover import (
    DEFAULT_MAX_BYTES,
    discover_counted,
    input_kind,
    is_url,
    local_path,
    max_bytes_problem,
)
from pipeline.errors import BuildError
from pipeline.figures import FigureJob
from pipeline.output import prepare_staging, publish, publish_remote, remove_leftovers
from pipeline.schema import PIPELINE_VERSION
from pipeline.write import (
    ColumnCollector,
    FilledCounter,
    KeyCollector,
    deduplicate,
    write_articles,
    write_json,
    write_rejects,
    write_table,
)

UNKNOWN_SOURCE = "(unknown)"


@dataclass
class BuildOptions:
    input: str
    output: str
    workers: int = 0  # 0: all cores
    engine: str = "local"
    scheduler: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES
    write_card: bool = True
    progress: Callable[[int, int | None], None] | None = None  # (posts done, total or None)

    def options_key(self) -> str:
        """Options that change results (and so the cache key)."""
        return f"max_bytes={self.max_bytes}"


def default_cache_dir(output: str) -> str:
    if is_url(output):
        return os.path.abspath(".pipeline-cache")
    out = Path(local_path(output)).absolute()
    return str(out.parent / ".pipeline-cache")


class BatchIndex:
    """Signature key (paths + size/mtime/inode) -> content key of the shard built from them,
    so an unchanged rebuild finds every result without reading a single post."""

    def __init__(self, cache_dir: str) -> None:
        self.path = Path(cache_dir) / "batch-index.json"
        try:
            self.entries: dict[str, str] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}
        self.seen: dict[str, str] = {}

    def get(self, signature_key: str | None) -> str | None:
        return self.entries.get(signature_key) if signature_key else None

    def record(self, signature_key: str | None, content_key: str) -> None:
        if signature_key:
            self.seen[signature_key] = content_key

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(self.seen, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def _run_engine(opts: BuildOptions, batches: Iterator[Batch],
                settings: BatchSettings) -> Iterator[tuple[bytes | None, dict[str, Any]]]:
    workers = opts.workers
    if opts.engine == "local":
        from pipeline.engines.local import default_workers, run_local

        return run_local(batches, settings, workers or default_workers())
    if opts.engine == "dask":
        from pipeline.engines.dask import run_dask

        if opts.scheduler:  # remote workers may not see our disk: they return shard bytes
            settings = BatchSettings(settings.max_bytes, settings.options_key, None, settings.use_cache)
        return run_dask(batches, settings, workers, opts.scheduler)
    raise BuildError(f"unknown engine {opts.engine!r} (choose local or dask)")


def _published_manifest(output: str) -> dict[str, Any] | None:
    try:
        if is_url(output):
            import fsspec

            with fsspec.open(output.rstrip("/") + "/manifest.json", "r", encoding="utf-8") as fh:
                return json.load(fh)
        with open(Path(local_path(output)) / "manifest.json", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _outputs_intact(output: str, manifest: dict[str, Any]) -> bool:
    if is_url(output):
        return False
    out = Path(local_path(output))
    return all((out / rel).is_file() and (out / rel).stat().st_size == size
               for rel, size in manifest.get("files", {}).items())


def build(opts: BuildOptions, figures: FigureJob | None = None) -> dict[str, Any]:
    """Run a build and publish it. Returns the manifest. `figures`: a FigureJob the caller
    started already (the CLI does, before importing the build's modules); else one is started
    here, unless the card is off. Either way the build ends it."""
    t_start = time.perf_counter()
    try:
        input_kind(opts.input)  # raises BuildError for a missing input, before any work
        problem = max_bytes_problem(opts.max_bytes)
        if problem:
            raise BuildError(f"max_bytes {problem}")
        if not opts.write_card and figures is not None:
            figures.close()
            figures = None
        elif opts.write_card and figures is None:
            # the card's figure process starts first: it imports Pillow while the posts are processed
            figures = FigureJob()
        return _build(opts, figures, t_start)
    finally:
        if figures is not None:
            figures.close()


def _build(opts: BuildOptions, figures: FigureJob | None, t_start: float) -> dict[str, Any]:
    use_system_allocator()
    cache_dir = opts.cache_dir or default_cache_dir(opts.output)
    store = ShardStore(cache_dir, code_fingerprint())
    store.hold()  # before reading the cache, to the end: no other build's pruning takes our shards
    try:
        return _build_holding(opts, figures, t_start, store, cache_dir)
    finally:
        store.release()


def _build_holding(opts: BuildOptions, figures: FigureJob | None, t_start: float, store: ShardStore,
                   cache_dir: str) -> dict[str, Any]:
    timings: dict[str, float] = {}
    index = BatchIndex(cache_dir)
    settings = BatchSettings(opts.max_bytes, opts.options_key(), str(Path(cache_dir).absolute()), opts.use_cache)

    t0 = time.perf_counter()
    # items are made as batches are cut; counted up front only for a progress display
    total, items_iter = discover_counted(opts.input, count=opts.progress is not None, max_bytes=opts.max_bytes)
    timings["discover"] = time.perf_counter() - t0

    order: list[str] = []  # content keys of every batch (sorted below: output order never depends on it)
    metas: dict[str, dict[str, Any]] = {}
    stats = Counter()

    key_columns = KeyCollector(store)

    def todo() -> Iterator[Batch]:
        for batch in make_batches(items_iter, opts.options_key(), opts.max_bytes):
            known = index.get(batch.key) if opts.use_cache else None
            meta = store.get_meta(known) if known else None
            if meta is not None:
                order.append(known)
                metas[known] = meta
                index.record(batch.key, known)
                stats["reused"] += meta["inputs"]
                if opts.progress:
                    opts.progress(meta["inputs"], total)
                continue
            yield batch

    t0 = time.perf_counter()
    for ipc, meta in _run_engine(opts, todo(), settings):
        key = meta["key"]
        if ipc is not None:
            store.put(key, ipc, {k: v for k, v in meta.items() if k not in ("signature_key", "reused")})
        order.append(key)
        metas[key] = meta
        key_columns.add(key)  # read now, next to the workers, not in the merge after them
        index.record(meta["signature_key"], key)
        stats["reused" if meta.get("reused") else "processed"] += meta["inputs"]
        if opts.progress:
            opts.progress(meta["inputs"], total)
    index.save()
    order.sort()
    timings["process"] = time.perf_counter() - t0
    # only now: worker processes forked with it would page-fault their every large buffer afresh
    fix_mmap_threshold()

    fingerprint = hashlib.sha256(f"{PIPELINE_VERSION}\n{opts.options_key()}\n".encode()
                                 + "\n".join(order).encode()).hexdigest()
    previous = _published_manifest(opts.output)
    if (opts.use_cache and stats["processed"] == 0 and previous
            and previous.get("input_fingerprint") == fingerprint
            and previous.get("pipeline_version") == PIPELINE_VERSION
            and _outputs_intact(opts.output, previous)
            # a card asked for now, after a --no-card build, is a reason to write
            and (not opts.write_card or "README.md" in previous.get("files", {}))):
        remove_leftovers(Path(local_path(opts.output)).absolute())
        previous["up_to_date"] = True
        previous["cache"] = {"reused": stats["reused"], "processed": 0, "up_to_date": True}
        previous["timings_s"] = {**{k: round(v, 4) for k, v in timings.items()},
                                 "total": round(time.perf_counter() - t_start, 4)}
        return previous

    t0 = time.perf_counter()
    local_out = None if is_url(opts.output) else Path(local_path(opts.output)).absolute()
    staging = prepare_staging(local_out) if local_out else Path(prepare_staging(Path(cache_dir) / "remote-out"))
    try:
        keys_table = key_columns.table(order)
        winners, duplicates = deduplicate(keys_table)
        rejects = [r for key in order for r in metas[key]["rejects"]]
        manifest = _manifest(opts, fingerprint, order, metas, keys_table, winners, duplicates, rejects, stats)
        drawn = figure_stats(winners, manifest) if opts.write_card else None
        if figures is not None and drawn is not None:  # drawn while the articles are written
            figures.draw(staging, drawn)
        write_rejects(rejects, staging)
        write_table(duplicates, staging / "duplicates.parquet")
        # From here on only each winner's place (shard, row) is needed: letting the key columns go
        # keeps the driver's memory from growing with them while the articles are written.
        placement = winners.select(["shard", "row"])
        del keys_table, winners, duplicates
        timings["merge"] = time.perf_counter() - t0  # keys read, deduplicated, counted
        t0 = time.perf_counter()
        filled = FilledCounter()
        card_columns = ColumnCollector(CARD_COLUMNS) if opts.write_card else None
        part_files = write_articles(store, order, placement, staging,
                                    (filled, card_columns) if card_columns else (filled,))
        timings["write"] = time.perf_counter() - t0

        manifest["articles_files"] = [f"articles/{n}" for n in part_files]
        manifest["filled"] = filled.counts  # rows with a value, per column: the card's coverage table
        t0 = time.perf_counter()
        if card_columns is not None:
            write_dataset_card(staging, manifest, card_columns.table(), figures, drawn)
        timings["card"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # never this build's shards (all in `order`); see ShardStore.prune for what goes
        pruned = store.prune(order)
        manifest["cache"]["pruned"] = asdict(pruned)
        timings["prune"] = time.perf_counter() - t0
        manifest["files"] = {str(p.relative_to(staging)): p.stat().st_size
                             for p in sorted(staging.rglob("*")) if p.is_file()}
        manifest["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        manifest["timings_s"]["total"] = round(time.perf_counter() - t_start, 4)
        write_json(manifest, staging / "manifest.json")
        if local_out is not None:
            publish(staging, local_out)
        else:
            publish_remote(staging, opts.output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _manifest(opts: BuildOptions, fingerprint: str, order: list[str], metas: dict[str, dict[str, Any]],
              keys_table: pa.Table, winners: pa.Table, duplicates: pa.Table, rejects: list[dict[str, Any]],
              stats: Counter) -> dict[str, Any]:
    inputs = sum(metas[k]["inputs"] for k in order)
    per_source: dict[str, Counter] = {}

    def bump(source: str | None, what: str, n: int = 1) -> None:
        per_source.setdefault(source or UNKNOWN_SOURCE, Counter())[what] += n

    # counted by Arrow, not row by row in Python: this runs while no worker is left to share the cores
    for s, n in value_counts(winners.column("source")).items():
        bump(s, "articles", n)
    is_duplicate = pc.is_in(keys_table.column("source_path"), value_set=duplicates.column("source_path"))
    for s, n in value_counts(keys_table.column("source").filter(is_duplicate)).items():
        bump(s, "duplicates", n)
    for r in rejects:
        bump(r.get("source"), "rejects")
    for c in per_source.values():
        c["inputs"] = c["articles"] + c["rejects"] + c["duplicates"]
    warnings = Counter(value_counts(pc.list_flatten(winners.column("warnings"))))
    return {
        "pipeline_version": PIPELINE_VERSION,
        "created_by": "python -m pipeline build",
        "input": opts.input,
        "input_fingerprint": fingerprint,
        "options": {"max_bytes": opts.max_bytes, "engine": opts.engine},
        "counts": {
            "inputs": inputs,
            "articles": winners.num_rows,
            "rejects": len(rejects),
            "duplicates": duplicates.num_rows,
            "per_source": {k: dict(sorted(v.items())) for k, v in sorted(per_source.items())},
            "rejects_by_reason": dict(sorted(Counter(r["reason"] for r in rejects).items())),
            "warnings": dict(sorted(warnings.items())),
        },
        "cache": {"reused": stats["reused"], "processed": stats["processed"], "up_to_date": False},
        "articles_files": [],  # set once written
    }
