"""Where a worker's time goes: each stage of the per-post work, timed alone over a corpus.

    .venv/bin/python scripts/profile_stages.py [CORPUS] [--repeat N]

Runs the pipeline's own stage functions, one stage at a time over every post (the inputs of a
stage are computed first, untimed), in one process, and prints microseconds per post, best of
--repeat passes (the machine is shared: the best pass is the least disturbed one). Rejected posts
are counted but skipped by the later stages. Compare the total with the build's own time per post:
the build adds process start-up, the merge and the Parquet write, and runs two such workers at once.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from pipeline._walk import Walker  # noqa: E402
from pipeline.assemble import assemble_article  # noqa: E402
from pipeline.batches import records_to_table, skip_pandas_probe, sort_key  # noqa: E402
from pipeline.clean import GENERIC_RULES, _plan_for, clean_body, parse_html, quick_tree_body  # noqa: E402
from pipeline.cna.markup import CNA_RULES  # noqa: E402
from pipeline.cna.url import is_cna  # noqa: E402
from pipeline.discover import discover_counted, read_item  # noqa: E402
from pipeline.errors import Reject  # noqa: E402
from pipeline.extract import extract_fields  # noqa: E402
from pipeline.parse import parse_post  # noqa: E402
from pipeline.schema import SHARD_SCHEMA  # noqa: E402

BATCH = 128  # posts per Arrow table, as in a build


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def walk(root: Any, rules: Any) -> Walker:
    walker = Walker(_plan_for(rules))
    if root is not None:
        walker.walk(root)
    return walker


def ipc_bytes(records: list[dict[str, Any]]) -> int:
    table = records_to_table(sorted(records, key=sort_key))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, SHARD_SCHEMA) as writer:
        writer.write_table(table, max_chunksize=64)
    return sink.getvalue().size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    skip_pandas_probe()

    _total, found = discover_counted(args.corpus)
    items = list(found)
    n = len(items)
    rows: list[tuple[str, float]] = []
    reference: list[tuple[str, float]] = []

    def stage(name: str, fn: Callable[[], Any]) -> None:
        rows.append((name, best_of(args.repeat, fn)))

    raws = [read_item(i, 8 << 20) for i in items]
    stage("read the file (os.open/read/close)", lambda: [read_item(i, 8 << 20) for i in items])
    shas = [hashlib.sha256(r).hexdigest() for r in raws]
    stage("sha256 of the raw bytes", lambda: [hashlib.sha256(r).hexdigest() for r in raws])

    def parse_all() -> list[tuple[int, dict[str, Any]]]:
        out = []
        for k, raw in enumerate(raws):
            try:
                out.append((k, parse_post(raw)))
            except Reject:
                pass
        return out

    parsed = parse_all()
    stage("parse: decode, front matter, epoch (pipeline.parse)", parse_all)
    rules = [CNA_RULES if is_cna(p["url"], p["source"]) else GENERIC_RULES for _k, p in parsed]
    bodies = [p["body_html"] for _k, p in parsed]
    taken = sum((q := quick_tree_body(b)) is not None and Walker(_plan_for(r)).walk_quick(q)
                for b, r in zip(bodies, rules, strict=True))
    stage(f"clean: quick tree + walk ({100 * taken / max(len(bodies), 1):.1f} % of posts), else libxml2",
          lambda: [clean_body(b, r) for b, r in zip(bodies, rules, strict=True)])
    cleaned = [clean_body(b, r) for b, r in zip(bodies, rules, strict=True)]
    # for reference, not in the total: the clean stage with libxml2's parser for every post
    roots = [parse_html(b) for b in bodies]
    reference.append(("  (reference) libxml2 parse of every body",
                      best_of(args.repeat, lambda: [parse_html(b) for b in bodies])))
    reference.append(("  (reference) walk of libxml2's trees",
                      best_of(args.repeat, lambda: [walk(root, r) for (root, _w), r in zip(roots, rules, strict=True)])))
    cna = [r is CNA_RULES for r in rules]
    extracted = [extract_fields(c["paragraphs"], p["published_at_ms"], k)
                 for c, (_i, p), k in zip(cleaned, parsed, cna, strict=True)]
    stage("extract: dateline, credits, ROC code (pipeline.cna)",
          lambda: [extract_fields(c["paragraphs"], p["published_at_ms"], k)
                   for c, (_i, p), k in zip(cleaned, parsed, cna, strict=True)])

    def assemble_all() -> list[dict[str, Any]]:
        return [assemble_article(items[k].source_path, shas[k], p, c, e[0], e[1], e[2])
                for (k, p), c, e in zip(parsed, cleaned, extracted, strict=True)]

    records = assemble_all()
    stage("assemble the record", assemble_all)
    stage(f"Arrow table + IPC shard bytes (per {BATCH} posts)",
          lambda: [ipc_bytes(records[i:i + BATCH]) for i in range(0, len(records), BATCH)])

    total = sum(s for _name, s in rows[1:])
    print(f"{n:,} posts ({len(parsed):,} parsed) under {args.corpus}; best of {args.repeat} passes, one process\n")
    print(f"{'stage':58s} {'s':>6s} {'µs/post':>8s} {'share':>6s}")
    for name, s in rows:
        share = "(I/O)" if name.startswith("read") else f"{100 * s / total:5.1f}%"
        print(f"{name:58s} {s:6.2f} {1e6 * s / n:8.1f} {share:>6s}")
    print(f"{'total per post (excluding the read)':58s} {total:6.2f} {1e6 * total / n:8.1f}")
    for name, s in reference:
        print(f"{name:58s} {s:6.2f} {1e6 * s / n:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
