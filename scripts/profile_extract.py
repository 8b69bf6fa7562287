"""Time the CNA text rules (extract stage) over a raw corpus.

    .venv/bin/python scripts/profile_extract.py [CORPUS_ROOT] [--repeat N] [--profile] [--dump OUT.json]
                                                [--compare BEFORE.json] [--save-input P.pickle | --input P.pickle]

Loads every post once and runs the pipeline's own parse and clean stages to get the paragraphs
(not timed), then times only ``extract_cna_fields`` / ``extract_credits_generic`` over the corpus
and prints µs per post (best of --repeat passes). --profile prints a cProfile top-15 of one pass.
--dump writes {source path: [paragraphs, fields, warnings]} as JSON, --compare checks the current
results against such a dump (exit status 1 on any difference), to show a change keeps results.
--save-input / --input store and reuse the clean paragraphs, so that a before/after comparison of
the extract stage is not disturbed by changes to the parse or clean stages in between.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pickle
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.clean import GENERIC_RULES, clean_body  # noqa: E402
from pipeline.cna.extract import extract_cna_fields, extract_credits_generic  # noqa: E402
from pipeline.cna.markup import CNA_RULES  # noqa: E402
from pipeline.cna.url import is_cna  # noqa: E402
from pipeline.parse import parse_post  # noqa: E402

DEFAULT_ROOT = "/work/shared/corpus/archived"


def load(root: str) -> list[tuple[str, bool, int | None, list[str]]]:
    """(relative path, is CNA, published_at_ms, clean paragraphs) of every post that parses."""
    posts = []
    for dirpath, _dirs, files in os.walk(root):
        for fn in sorted(files):
            if not fn.endswith(".md"):
                continue
            path = os.path.join(dirpath, fn)
            try:
                raw = Path(path).read_bytes()
                parsed = parse_post(raw)
            except Exception:  # noqa: BLE001 - rejects never reach the extract stage
                continue
            cna = is_cna(parsed["url"], parsed["source"])
            cleaned = clean_body(parsed["body_html"], CNA_RULES if cna else GENERIC_RULES)
            posts.append((os.path.relpath(path, root), cna, parsed["published_at_ms"], cleaned["paragraphs"]))
    posts.sort(key=lambda p: p[0])
    return posts


def run_all(posts):
    for _rel, cna, epoch, paras in posts:
        if cna:
            extract_cna_fields(paras, epoch)
        else:
            extract_credits_generic(paras, epoch)


def results(posts) -> dict:
    out = {}
    for rel, cna, epoch, paras in posts:
        fn = extract_cna_fields if cna else extract_credits_generic
        clean, fields, warnings = fn(list(paras), epoch)
        fields = dict(fields)
        if fields.get("roc_date") is not None:
            fields["roc_date"] = fields["roc_date"].isoformat()
        out[rel] = [clean, fields, warnings]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default=DEFAULT_ROOT)
    ap.add_argument("--repeat", type=int, default=5, help="timed passes; the best is reported (default 5)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile top-15 of one pass")
    ap.add_argument("--dump", metavar="OUT.json", help="write the results per post")
    ap.add_argument("--compare", metavar="BEFORE.json", help="compare the results with a dump")
    ap.add_argument("--save-input", metavar="P.pickle", help="store the clean paragraphs")
    ap.add_argument("--input", metavar="P.pickle", help="use stored clean paragraphs instead of the corpus")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    if args.input:
        posts = pickle.loads(Path(args.input).read_bytes())
    else:
        posts = load(args.root)
    if args.save_input:
        Path(args.save_input).write_bytes(pickle.dumps(posts, protocol=pickle.HIGHEST_PROTOCOL))
    n_cna = sum(1 for p in posts if p[1])
    n_paras = sum(len(p[3]) for p in posts)
    print(f"loaded {len(posts)} posts ({n_cna} CNA, {n_paras} paragraphs) in {time.perf_counter() - t0:.1f}s")

    run_all(posts)  # warm-up (gazetteer, regex caches)
    times = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        run_all(posts)
        times.append(time.perf_counter() - t)
    best = min(times)
    print(
        f"extract: best {best * 1e6 / len(posts):.1f} µs/post, "
        f"median {sorted(times)[len(times) // 2] * 1e6 / len(posts):.1f} µs/post "
        f"({best:.3f}s for {len(posts)} posts, {len(times)} passes)"
    )

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run_all, posts)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)

    status = 0
    if args.dump or args.compare:
        res = results(posts)
        if args.dump:
            Path(args.dump).write_text(json.dumps(res, ensure_ascii=False, sort_keys=True), encoding="utf-8")
            print(f"wrote {len(res)} results to {args.dump}")
        if args.compare:
            before = json.loads(Path(args.compare).read_text(encoding="utf-8"))
            now = json.loads(json.dumps(res, ensure_ascii=False))
            diff = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            print(f"compare with {args.compare}: {len(diff)} of {len(now)} posts differ")
            for k in diff[:20]:
                print(f"  {k}\n    before {before.get(k)!r:.400}\n    now    {now.get(k)!r:.400}")
            status = 1 if diff else 0
    return status


if __name__ == "__main__":
    raise SystemExit(main())
