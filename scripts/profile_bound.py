"""How fast could a build get if a stage cost nothing? The real build with stages stubbed out.

    .venv/bin/python scripts/profile_bound.py [CORPUS] [--repeat 5]

Runs the build CLI (`pipeline.cli.main(["build", ..., "--no-cache", "--quiet"])`, all cores) in
a fresh process per run, in three variants, taking turns so a slow spell of the machine hits
them alike, and prints the fastest wall time of each beside the bench's floor measured in the
same script:

- `full`: the build as it is.
- `html-only`: each post is read and hashed, its body (from the first `<div`) goes through the
  real clean stage (lxml parse + the compiled walk), and its record is built from that alone:
  the parse, extract and assemble stages (front matter, CNA rules, ids) cost nothing. Everything
  after the worker (shards, merge, Parquet write, card, figures) is the real thing.
- `no-html`: as `html-only` without the clean stage either (no paragraphs): what the engine,
  the shards, the write and the card cost on their own.

The stubs replace `pipeline.batches.process_posts` before the local engine forks its workers.
Their records are not an article dataset (ids are content hashes, no dates): only the timings
mean anything. The floor is `scripts/bench.py`'s, run in this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("full", "html-only", "no-html")

ONE_BUILD = """
import re
import sys

import pyarrow as pa

import pipeline.batches
from pipeline.clean import clean_body
from pipeline.cna.markup import CNA_RULES
from pipeline.schema import SHARD_SCHEMA

variant, corpus, out, cache = sys.argv[1:5]
EPOCH_RE = re.compile(rb"<!--(\\d{1,15})-->")
# every shard column empty: null, or [] for lists (so a schema change does not break the stub)
EMPTY = {f.name: [] if pa.types.is_list(f.type) else None for f in SHARD_SCHEMA}
NO_HTML = {"paragraphs": [], "images": [], "related": [], "warnings": []}

def stub_post(source_path, raw, content_sha256=None):
    # the publish time (as the parse stage reads it): the dataset keeps the real row order, so
    # the write gathers rows from the shards as it does in a real build
    m = EPOCH_RE.search(raw, 0, 4096)
    at = raw.find(b"<div")
    cleaned = clean_body(raw[at:] if at >= 0 else b"", CNA_RULES) if variant == "html-only" else NO_HTML
    return "article", {**EMPTY, **cleaned, "article_id": content_sha256[:16], "source": "stub",
                       "published_at": int(m.group(1)) if m else None, "source_path": source_path,
                       "content_sha256": content_sha256}

def stub_posts(posts):
    return [stub_post(*post) for post in posts]

if variant != "full":
    pipeline.batches.process_posts = stub_posts
from pipeline.cli import main
raise SystemExit(main(["build", "--input", corpus, "--output", out, "--cache-dir", cache, "--no-cache", "--quiet"]))
"""


def run_build(variant: str, corpus: str, tmp: str) -> float:
    # what `python -m pipeline` sets for itself (pipeline/__init__.py); `-c` does not get it
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", ONE_BUILD, variant, corpus, f"{tmp}/out-{variant}", f"{tmp}/cache"],
                   cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from scripts.bench import floor  # noqa: PLC0415 - the bench's own definition

    posts = sorted(Path(args.corpus).rglob("*.md"))
    seconds: dict[str, list[float]] = {v: [] for v in ("floor", *VARIANTS)}
    with tempfile.TemporaryDirectory(prefix="profile-bound-") as tmp:
        for _ in range(args.repeat):
            seconds["floor"].append(floor(posts)["seconds"])
            for variant in VARIANTS:
                seconds[variant].append(run_build(variant, args.corpus, tmp))
    best_floor = min(seconds["floor"])
    print(f"{len(posts):,} posts, fastest of {args.repeat} runs each (all runs in brackets)")
    for name, runs in seconds.items():
        best = min(runs)
        print(f"  {name:10s} {best:5.2f} s  {best / best_floor:4.2f} x floor  "
              f"[{', '.join(f'{s:.2f}' for s in runs)}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
