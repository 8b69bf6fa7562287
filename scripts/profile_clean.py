"""Time the clean stage (body HTML -> paragraphs, images, related links) over a raw corpus.

    .venv/bin/python scripts/profile_clean.py [CORPUS_ROOT] [--repeat N] [--profile]
                                              [--dump OUT.pickle] [--compare BEFORE.pickle]

Loads every post once (the pipeline's own parse stage, not timed), then times, alternating, over
every body: ``parse_html`` alone (libxml2), ``clean_body`` as the build runs it (the quick tree
where it takes the body, libxml2 for the rest) and ``clean_body(quick=False)`` (libxml2 for every
body), and prints µs per post (best of --repeat passes) and how many bodies the quick tree took;
it also checks that both ways give the same output for every post (exit status 1 if not).
--profile prints a cProfile top-20 of one clean pass. --dump writes {source path: clean_body
output} as a pickle, --compare checks the current outputs against such a dump and shows the first
few differences (exit status 1 on any difference).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pickle
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline._walk import Walker  # noqa: E402
from pipeline.clean import GENERIC_RULES, MarkupRules, _plan_for, clean_body, parse_html, quick_tree_body  # noqa: E402
from pipeline.cna.markup import CNA_RULES  # noqa: E402
from pipeline.cna.url import is_cna  # noqa: E402
from pipeline.parse import parse_post  # noqa: E402

DEFAULT_ROOT = "/work/shared/corpus/archived"


def load(root: str) -> list[tuple[str, str, MarkupRules]]:
    """(relative path, body HTML, markup rules) of every post that parses, sorted by path."""
    posts = []
    for dirpath, _dirs, files in os.walk(root):
        for fn in files:
            if not fn.endswith(".md"):
                continue
            path = os.path.join(dirpath, fn)
            try:
                parsed = parse_post(Path(path).read_bytes())
            except Exception:  # noqa: BLE001 - rejects never reach the clean stage
                continue
            rules = CNA_RULES if is_cna(parsed["url"], parsed["source"]) else GENERIC_RULES
            posts.append((os.path.relpath(path, root), parsed["body_html"], rules))
    posts.sort(key=lambda p: p[0])
    return posts


def quick_takes(body: bytes, rules: MarkupRules) -> bool:
    """Does the clean stage read `body` through the quick tree?"""
    quick = quick_tree_body(body)
    return quick is not None and Walker(_plan_for(rules)).walk_quick(quick)


def run_parse(posts) -> None:
    for _rel, body, _rules in posts:
        parse_html(body)


def run_clean(posts, quick: bool = True) -> None:
    # outputs are dropped as they come, as run_parse drops its trees: keeping 21,816 outputs
    # alive would charge the garbage collector's growing passes to the clean stage
    for _rel, body, rules in posts:
        clean_body(body, rules, quick)


def outputs_of(posts) -> list:
    return [clean_body(body, rules) for _rel, body, rules in posts]


def best_times(posts, repeat: int) -> tuple[float, float, float]:
    """Best pass times of parse_html alone, clean_body as built and clean_body through libxml2;
    the passes alternate so that all see the same machine load."""
    t_parse = t_clean = t_libxml2 = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_parse(posts)
        t1 = time.perf_counter()
        run_clean(posts)
        t2 = time.perf_counter()
        run_clean(posts, quick=False)
        t3 = time.perf_counter()
        t_parse, t_clean, t_libxml2 = min(t_parse, t1 - t0), min(t_clean, t2 - t1), min(t_libxml2, t3 - t2)
    return t_parse, t_clean, t_libxml2


def compare(posts, outputs, before_path: str, show: int = 5) -> int:
    with open(before_path, "rb") as f:
        before = pickle.load(f)
    now = {rel: out for (rel, _b, _r), out in zip(posts, outputs, strict=True)}
    diffs = []
    for rel in sorted(set(before) | set(now)):
        if before.get(rel) != now.get(rel):
            diffs.append(rel)
    print(f"compare: {len(now)} posts now, {len(before)} before, {len(diffs)} differ")
    for rel in diffs[:show]:
        b, n = before.get(rel), now.get(rel)
        print(f"--- {rel}")
        if b is None or n is None:
            print(f"  before: {b!r:.300}\n  now:    {n!r:.300}")
            continue
        for key in sorted(set(b) | set(n)):
            if b.get(key) != n.get(key):
                bv, nv = b.get(key) or [], n.get(key) or []
                for i in range(max(len(bv), len(nv))):
                    x = bv[i] if i < len(bv) else "<missing>"
                    y = nv[i] if i < len(nv) else "<missing>"
                    if x != y:
                        print(f"  {key}[{i}] before: {x!r:.300}\n  {key}[{i}] now:    {y!r:.300}")
                        break
    return len(diffs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=DEFAULT_ROOT)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--dump")
    ap.add_argument("--compare")
    args = ap.parse_args()

    t0 = time.perf_counter()
    posts = load(args.root)
    print(f"loaded {len(posts)} posts in {time.perf_counter() - t0:.1f} s")
    n = len(posts) or 1

    t_parse, t_clean, t_libxml2 = best_times(posts, args.repeat)
    taken = sum(quick_takes(body, rules) for _rel, body, rules in posts)
    print(f"clean_body:                {t_clean / n * 1e6:7.1f} µs/post (best of {args.repeat}; the quick tree "
          f"took {taken} of {len(posts)} bodies, {100 * taken / n:.1f} %)")
    print(f"clean_body through libxml2: {t_libxml2 / n * 1e6:6.1f} µs/post, of which parse_html "
          f"{t_parse / n * 1e6:.1f}")
    differ = [rel for rel, body, rules in posts if clean_body(body, rules) != clean_body(body, rules, quick=False)]
    print(f"quick tree against libxml2: {len(differ)} posts differ" + (f", first {differ[:3]}" if differ else ""))

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run_clean(posts)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)

    outputs = outputs_of(posts) if (args.dump or args.compare) else []
    status = 1 if differ else 0
    if args.dump:
        with open(args.dump, "wb") as f:
            pickle.dump({rel: out for (rel, _b, _r), out in zip(posts, outputs, strict=True)}, f)
        print(f"dumped {len(outputs)} outputs to {args.dump}")
    if args.compare and compare(posts, outputs, args.compare):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
