"""Command line: `python -m pipeline build|validate`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pipeline.discover import DEFAULT_MAX_BYTES, max_bytes_problem
from pipeline.errors import BuildError


def _parse_size(text: str) -> int:
    """A byte count such as 8MiB, 500k or 1048576."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        size = int(float(text[:-1]) * units[text[-1]]) if text and text[-1] in units else int(text)
    except OverflowError:  # "1e400k", "infk"
        raise argparse.ArgumentTypeError("not a finite size") from None
    problem = max_bytes_problem(size)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return size


def _worker_count(text: str) -> int:
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError("must be 0 (all cores) or more")
    return count


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the dataset from raw posts")
    b.add_argument("--input", required=True, help="folder of posts (any depth), .zip, .tar.gz, or fsspec URL")
    b.add_argument("--output", default="outputs", help="output folder or fsspec URL (default: outputs)")
    b.add_argument("--workers", type=_worker_count, default=0, help="worker processes (default 0: all cores)")
    b.add_argument("--engine", choices=["local", "dask"], default="local")
    b.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a LocalCluster)")
    b.add_argument("--cache-dir", default=None, help="build cache (default: .pipeline-cache beside the output)")
    b.add_argument("--no-cache", action="store_true", help="ignore earlier results: process every post")
    b.add_argument("--max-bytes", type=_parse_size, default=DEFAULT_MAX_BYTES,
                   help="posts larger than this are rejected as too_large (default 8MiB)")
    b.add_argument("--no-card", action="store_true", help="skip the dataset card and its figures")
    b.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    v = sub.add_parser("validate", help="check a built dataset against the contract")
    v.add_argument("path", nargs="?", default="outputs")
    return parser


def _summary(manifest: dict[str, Any], seconds: float) -> str:
    c = manifest["counts"]
    lines = [f"{c['inputs']} inputs -> {c['articles']} articles, {c['duplicates']} duplicates, "
             f"{c['rejects']} rejects in {seconds:.1f}s"]
    if manifest.get("up_to_date"):
        lines.append("(up to date: the input and pipeline version are unchanged; nothing rewritten)")
    cache = manifest.get("cache", {})
    lines.append(f"posts processed: {cache.get('processed', 0)}, reused from cache: {cache.get('reused', 0)}")
    pruned = cache.get("pruned") or {}
    if any(pruned.values()):
        lines.append(f"cache pruned: {pruned['shards']} unused shard(s), {pruned['code_versions']} folder(s) of "
                     f"other code versions, {pruned['leftovers']} leftover(s) of killed builds, "
                     f"{pruned['bytes'] / 1e6:.1f} MB")
    for reason, n in c.get("rejects_by_reason", {}).items():
        lines.append(f"  reject {reason}: {n}")
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.figures import FigureJob

    # Forked before the build's own imports (about 0.1 s on one core): the figure process imports
    # Pillow on the other, idle, core meanwhile instead of next to the workers.
    figures = None if args.no_card else FigureJob()
    try:
        return _run_build(args, figures)
    finally:
        if figures is not None:
            figures.close()  # a no-op once the build has ended it


def _run_build(args: argparse.Namespace, figures: Any) -> int:
    from pipeline.batches import skip_pandas_probe
    from pipeline.build import BuildOptions, build

    skip_pandas_probe()  # this process only builds: spare it pyarrow's pandas import
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the build forks (card figures) only without threads
        bar = tqdm(unit="post", desc="build", dynamic_ncols=True)

    def progress(n: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(n)

    opts = BuildOptions(input=args.input, output=args.output, workers=args.workers, engine=args.engine,
                        scheduler=args.scheduler, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                        max_bytes=args.max_bytes, write_card=not args.no_card,
                        progress=progress if bar is not None else None)
    t0 = time.perf_counter()
    try:
        manifest = build(opts, figures)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(_summary(manifest, time.perf_counter() - t0))
        print(f"dataset: {args.output}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.validate import validate_dataset

    problems = validate_dataset(args.path)
    if problems:
        print(f"INVALID dataset {args.path}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems[:50]:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"OK: {args.path} matches the dataset contract")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        if args.command == "build":
            return cmd_build(args)
        return cmd_validate(args)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the previous dataset is untouched", file=sys.stderr)
        return 130
