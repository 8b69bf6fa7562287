"""Write a synthetic N x corpus for scaling benchmarks: `--factor` copies of every post.

    python scripts/make_scaled_corpus.py --input ../shared/corpus --output /tmp/corpus-4x --factor 4

Copy k lands in OUTPUT/copy-k/<same relative path>. Copy 0 is the original bytes; in copy k >= 1
the article URL (front matter `from:` and the `[title](url)` line) is rewritten so every copy is
a distinct article and deduplication does not collapse them:

* CNA URLs: the 12-digit id's leading "20" becomes the two digits of k ("01", "02", …), so
  202010010003 -> 012010010003 in copy 1 (real ids all start with 20, so no clash);
* other URLs: a `copy=k` query parameter is added (kept by URL canonicalisation).

The output must be outside the repository (it is real data). Deterministic: same input, same bytes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

CNA_ID_RE = re.compile(r"(cna\.com\.tw/+news/+[A-Za-z0-9_-]+/+)(\d{12})(\.aspx)", re.IGNORECASE)
FROM_RE = re.compile(rb"^from:[ \t]*(\S+)[ \t]*\r?$", re.MULTILINE)


def rewrite_url(url: str, k: int) -> str:
    if k == 0:
        return url
    m = CNA_ID_RE.search(url)
    if m:
        new_id = f"{k:02d}" + m.group(2)[2:]
        return url[:m.start(2)] + new_id + url[m.end(2):]
    base, hash_, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}copy={k}{hash_}{fragment}"


def rewrite_post(data: bytes, k: int) -> bytes:
    """The post with its article URL rewritten for copy k, in the header only (before the body)."""
    if k == 0:
        return data
    m = FROM_RE.search(data)
    if m is None:
        return data  # no URL: the copy differs only by path
    old = m.group(1)
    new = rewrite_url(old.decode("utf-8", "surrogateescape"), k).encode("utf-8", "surrogateescape")
    body_at = data.find(b"\n<div")
    head, body = (data, b"") if body_at < 0 else (data[:body_at], data[body_at:])
    return head.replace(old, new) + body


def make_scaled(src: Path, dst: Path, factor: int) -> int:
    """Write the copies; returns the number of files written."""
    written = 0
    files = []
    for dirpath, _dirs, names in os.walk(src):
        for name in names:
            full = Path(dirpath) / name
            if full.is_file():
                files.append(full.relative_to(src))
    files.sort()
    for k in range(factor):
        for rel in files:
            target = dst / f"copy-{k}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel.suffix == ".md":
                target.write_bytes(rewrite_post((src / rel).read_bytes(), k))
            else:
                shutil.copyfile(src / rel, target)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="../shared/corpus", help="corpus folder (default ../shared/corpus)")
    ap.add_argument("--output", required=True, help="folder to create, outside the repository (e.g. /tmp/corpus-4x)")
    ap.add_argument("--factor", type=int, default=4, help="number of copies of every post (1-99, default 4)")
    ap.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    args = ap.parse_args(argv)
    src, dst = Path(args.input).resolve(), Path(args.output).resolve()
    repo = Path(__file__).resolve().parent.parent
    if not src.is_dir():
        print(f"error: input folder not found: {src}", file=sys.stderr)
        return 2
    if not 1 <= args.factor <= 99:
        print("error: --factor must be between 1 and 99", file=sys.stderr)
        return 2
    if dst == repo or repo in dst.parents:
        print(f"error: write the scaled corpus outside the repository, not {dst}", file=sys.stderr)
        return 2
    if dst.exists():
        if not args.force:
            print(f"error: {dst} exists (use --force to replace it)", file=sys.stderr)
            return 2
        shutil.rmtree(dst)
    n = make_scaled(src, dst, args.factor)
    print(f"{n} files ({args.factor} x) written to {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
