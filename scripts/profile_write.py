"""The write phase alone: a built cache's shards -> the articles' Parquet files, timed in-process.

    .venv/bin/python scripts/profile_write.py [CORPUS] [--repeat N] [--mmap-threshold MIB ...]
        [--trim-threshold MIB ...]

Builds CORPUS once into a temporary folder (its cache is what the write phase reads), then, in a
fresh process per run, merges the shards' keys and runs `pipeline.write.write_articles` (the two
writer threads and the card's observers, as in a build) with glibc's mmap threshold set as the
build sets it after processing (`--mmap-threshold`, MiB) and its trim threshold (`--trim-threshold`,
MiB; default: the build's own, `pipeline.batches.TRIM_THRESHOLD_BYTES`); every combination of the
values given alternates. Prints wall time, process CPU (all threads), system CPU, minor page faults
and the process's peak RSS per run.
"""

from __future__ import annotations

import argparse
import ctypes
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_run(cache: str, threshold: int, trim: int) -> None:
    from pipeline.batches import code_fingerprint, use_system_allocator
    from pipeline.cache import ShardStore
    from pipeline.card import CARD_COLUMNS
    from pipeline.write import ColumnCollector, FilledCounter, KeyCollector, deduplicate, write_articles

    use_system_allocator()
    store = ShardStore(cache, code_fingerprint())
    order = sorted(p.stem for p in store.folder.rglob("*.arrow"))
    keys = KeyCollector(store)
    for key in order:
        keys.add(key)
    winners, _ = deduplicate(keys.table(order))
    placement = winners.select(["shard", "row"])
    del winners
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, threshold)  # M_MMAP_THRESHOLD, as batches.fix_mmap_threshold
    libc.mallopt(-1, trim)  # M_TRIM_THRESHOLD, likewise
    out = Path(tempfile.mkdtemp(prefix="profile-write-"))
    try:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        write_articles(store, order, placement, out, (FilledCounter(), ColumnCollector(CARD_COLUMNS)))
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(f"mmap threshold {threshold >> 20:3d} MiB, trim threshold {trim / 2**20:6.2f} MiB: wall {wall:.3f} s, "
          f"CPU {cpu:.3f} s (system {r1.ru_stime - r0.ru_stime:.3f} s), minor page faults "
          f"{r1.ru_minflt - r0.ru_minflt}, peak RSS {r1.ru_maxrss >> 10} MB", flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mmap-threshold", type=int, nargs="+", default=None,
                    help="MiB; default: the build's own (pipeline.batches.MMAP_THRESHOLD_BYTES)")
    ap.add_argument("--trim-threshold", type=float, nargs="+", default=None,
                    help="MiB; default: the build's own (pipeline.batches.TRIM_THRESHOLD_BYTES)")
    ap.add_argument("--one-run", nargs=3, metavar=("CACHE", "MMAP", "TRIM"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one_run:
        one_run(args.one_run[0], int(args.one_run[1]), int(args.one_run[2]))
        return 0
    from pipeline.batches import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES

    thresholds = [m << 20 for m in args.mmap_threshold] if args.mmap_threshold else [MMAP_THRESHOLD_BYTES]
    trims = [int(m * 2**20) for m in args.trim_threshold] if args.trim_threshold else [TRIM_THRESHOLD_BYTES]
    tmp = Path(tempfile.mkdtemp(prefix="profile-write-"))
    try:
        subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", args.corpus, "--output",
                        str(tmp / "out"), "--cache-dir", str(tmp / "cache"), "--no-cache", "--no-card",
                        "--quiet"], cwd=ROOT, check=True)
        for _ in range(args.repeat):
            for threshold in thresholds:  # alternating: the machine's load drifts
                for trim in trims:
                    subprocess.run([sys.executable, __file__, "--one-run", str(tmp / "cache"), str(threshold),
                                    str(trim)], cwd=ROOT, check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
