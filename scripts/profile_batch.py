"""Where a worker's time goes, batch by batch: the stage order, and the sections of a batch.

    .venv/bin/python scripts/profile_batch.py [CORPUS] [--rounds 3] [--sizes 1 0]

One process, the corpus's posts read into memory first, the real batches (`make_batches`):

1. Stage order: every post through all the stages before the next post (what workers did before
   the sixth session) against each stage over the whole batch before the next stage (what they do
   now), or over runs of `--sizes` posts, alternating `--rounds` times; µs per post.
2. Sections of `batches.process_batch`, timed one by one (read, hash, stages, sort, record ->
   Arrow, IPC bytes, shard file, freeing the batch), into a temporary shard store; µs per post.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from pipeline.batches import (  # noqa: E402
    SHARD_CHUNK_ROWS,
    batch_key,
    code_fingerprint,
    make_batches,
    records_to_table,
    release_free_memory,
    skip_pandas_probe,
    sort_key,
    use_system_allocator,
)
from pipeline.cache import ShardStore  # noqa: E402
from pipeline.discover import discover, read_item  # noqa: E402
from pipeline.process import process_posts  # noqa: E402
from pipeline.schema import SHARD_SCHEMA  # noqa: E402

MAX_BYTES = 8 << 20


def stage_order(batches: list[list[tuple[str, bytes, str]]], rounds: int, sizes: list[int]) -> None:
    """`process_posts` over runs of each size in `sizes` (1: each post through every stage before
    the next post; 0: the whole batch), alternating."""
    n = sum(len(b) for b in batches)

    def run(size: int) -> None:
        for batch in batches:
            step = size or len(batch)
            for start in range(0, len(batch), step):
                process_posts(batch[start:start + step])

    runs: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for size in sizes:
            t0 = time.perf_counter()
            run(size)
            runs[size].append((time.perf_counter() - t0) / n * 1e6)
    print(f"stage order, {n:,} posts, µs per post ({rounds} alternating rounds):")
    for size, values in runs.items():
        name = "per post" if size == 1 else "per batch" if size == 0 else f"per {size} posts"
        print(f"  {name:13s} {min(values):6.1f} fastest  [{', '.join(f'{v:.1f}' for v in values)}]")


def batch_sections(corpus: str) -> None:
    use_system_allocator()
    batches = list(make_batches(discover(corpus, max_bytes=MAX_BYTES), "profile"))
    n = sum(len(b.items) for b in batches)
    spent: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory(prefix="profile-batch-") as tmp:
        store = ShardStore(tmp, code_fingerprint())
        for batch in batches:
            t = time.perf_counter()

            def lap(name: str) -> None:
                nonlocal t
                now = time.perf_counter()
                spent[name] += now - t
                t = now

            raws = [read_item(item, MAX_BYTES, {}) for item in batch.items]
            lap("read")
            for item, raw in zip(batch.items, raws, strict=True):
                item.content_sha256 = hashlib.sha256(raw).hexdigest()
            lap("sha256")
            key = batch_key(batch.items, "profile")
            results = process_posts([(i.source_path, r, i.content_sha256) for i, r in zip(batch.items, raws, strict=True)])
            lap("stages")
            records = sorted((row for kind, row in results if kind == "article"), key=sort_key)
            lap("sort")
            table = records_to_table(records)
            lap("record -> Arrow")
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, SHARD_SCHEMA) as writer:
                writer.write_table(table, max_chunksize=SHARD_CHUNK_ROWS)
            ipc = sink.getvalue()
            lap("IPC bytes")
            store.put(key, ipc, {"key": key, "inputs": len(batch.items), "articles": len(records), "rejects": []})
            lap("shard file")
            del ipc, sink, table, records, raws, results
            release_free_memory()
            lap("free")
    print(f"process_batch sections, {n:,} posts, µs per post:")
    for name, seconds in spent.items():
        print(f"  {name:16s} {seconds / n * 1e6:6.1f}")
    print(f"  {'total':16s} {sum(spent.values()) / n * 1e6:6.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 0],
                    help="posts taken through the stages together: 1 = one by one, 0 = the whole batch")
    args = ap.parse_args()
    skip_pandas_probe()
    batches = []
    for batch in make_batches(discover(args.corpus, max_bytes=MAX_BYTES), "profile"):
        posts = []
        for item in batch.items:
            raw = read_item(item, MAX_BYTES, {})
            posts.append((item.source_path, raw, hashlib.sha256(raw).hexdigest()))
        batches.append(posts)
    stage_order(batches, args.rounds, args.sizes)
    del batches
    batch_sections(args.corpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
