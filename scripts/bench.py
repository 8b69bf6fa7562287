"""Benchmark the build against its floor, its cache, trafilatura, a 4x corpus and the Dask engine.

    make bench                                   # BENCH_INPUT=../shared/corpus
    .venv/bin/python scripts/bench.py --input ../shared/corpus [--json build/bench.json]

One run prints a table with goals marked PASS/FAIL and writes the same figures as JSON.
It always exits 0 when it could measure (it is a report); 2 when the input is unusable.
See docs/performance.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
CNA_FROM_RE = re.compile(rb"^from:\s*https?://(?:[a-z0-9-]+\.)*cna\.com\.tw/", re.MULTILINE | re.IGNORECASE)

GOALS = {
    "build_over_floor": ("build time / floor time", "<=", 2.0),
    "trafilatura_over_build": ("trafilatura time / build time", ">=", 25.0),
    "peak_rss_mb": ("build peak RSS (process tree), MB", "<=", 500.0),
    "scaling_rss_ratio": ("4x peak RSS / 1x peak RSS", "<=", 1.2),
    "scaling_time_per_post_ratio": ("4x time per post / 1x time per post", "<=", 1.1),
    "dask_identical": ("dask output byte-identical to local", "==", True),
}


# -- measuring -------------------------------------------------------------------------------

def posts_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.md") if p.is_file())


class TreeRSS:
    """Polls the RSS sum of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_procs = 0
        self.peak_root = 0  # the driver (the build command itself): discover, merge, write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                if p is self.proc:
                    self.peak_root = max(self.peak_root, rss)
            if total > self.peak:
                self.peak, self.peak_procs = total, len(procs)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class NoPolling:
    """TreeRSS's stand-in for timing runs: polling /proc every 20 ms takes CPU from the build."""

    peak = peak_procs = peak_root = None

    def __enter__(self) -> NoPolling:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def run_build(args: list[str], label: str, memory: bool = True) -> dict[str, Any]:
    """`python -m pipeline build ARGS` as a child process: wall time, manifest, and (when
    `memory`) the peak RSS of its process tree."""
    cmd = [sys.executable, "-m", "pipeline", "build", *args]
    print(f"  [{label}] {' '.join(cmd[1:])}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with (TreeRSS(proc.pid) if memory else NoPolling()) as rss:
        out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    max_single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    output = Path(args[args.index("--output") + 1])
    manifest = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    # An up-to-date build leaves manifest.json untouched: take its cache figures from the summary.
    summary = out.decode("utf-8", "replace")
    m = re.search(r"posts processed: (\d+), reused from cache: (\d+)", summary)
    cache = ({"processed": int(m.group(1)), "reused": int(m.group(2)), "up_to_date": "up to date" in summary}
             if m else manifest.get("cache"))
    return {
        "command": "python -m pipeline build " + " ".join(args),
        "seconds": seconds,
        "peak_rss_tree_mb": rss.peak / MB if memory else None,
        "peak_rss_procs": rss.peak_procs,
        "peak_rss_driver_mb": rss.peak_root / MB if memory else None,
        # ru_maxrss (KiB on Linux) is the largest single child so far; only meaningful when it grew.
        "max_single_child_rss_mb": max_single / 1024 if max_single > before else None,
        "counts": {k: manifest["counts"][k] for k in ("inputs", "articles", "rejects", "duplicates")},
        "cache": cache,
        "timings_s": manifest.get("timings_s"),
        "output": str(output),
    }


def floor(posts: list[Path]) -> dict[str, Any]:
    """The least any extractor must do: read each post, lxml-parse its body, collect <p> texts."""
    from lxml import etree

    parser = etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True,
                              default_doctype=False, collect_ids=False, huge_tree=False)
    n_paragraphs = 0
    t0 = time.perf_counter()
    for path in posts:
        text = path.read_bytes().decode("utf-8", "replace")
        at = text.find("<div")
        if at < 0:
            continue
        root = etree.fromstring(text[at:], parser)
        if root is None:
            continue
        for p in root.iter("p"):
            if "".join(p.itertext()).strip():
                n_paragraphs += 1
    return {"seconds": time.perf_counter() - t0, "paragraphs": n_paragraphs}


def trafilatura_sample(posts: list[Path], every: int, passes: int = 3) -> dict[str, Any]:
    """trafilatura.extract on the bodies of every `every`-th post (sorted paths: a fixed sample of
    the posts the build reads, every feed in its share), `passes` times; the fastest pass counts, as
    for the floor and the build (the least disturbed). Each call is timed, so the same passes also
    give the figure for the sample's CNA posts alone (what earlier benches sampled: CNA bodies are
    smaller than the other feeds', so that figure is lower)."""
    import trafilatura

    sample = posts[::every]
    bodies, is_cna = [], []
    for p in sample:
        raw = p.read_bytes()
        text = raw.decode("utf-8", "replace")
        at = text.find("<div")
        bodies.append(text[at:] if at >= 0 else text)
        is_cna.append(CNA_FROM_RE.search(raw[:4096]) is not None)
    trafilatura.extract(bodies[0]) if bodies else None  # warm-up: imports, lazy tables
    all_seconds, cna_seconds = [], []
    clock = time.perf_counter
    for _ in range(max(passes, 1)):
        spent = []
        extracted = 0
        for b in bodies:
            t0 = clock()
            extracted += trafilatura.extract(b) is not None
            spent.append(clock() - t0)
        all_seconds.append(sum(spent))
        cna_seconds.append(sum(s for s, c in zip(spent, is_cna, strict=True) if c))
    seconds = min(all_seconds)
    n_cna = sum(is_cna)
    return {"sample_posts": len(sample), "sample_cna_posts": n_cna, "every": every, "seconds": seconds,
            "all_seconds": all_seconds, "extracted": extracted, "seconds_per_post": seconds / max(len(sample), 1),
            "cna_seconds_per_post": min(cna_seconds) / n_cna if n_cna else None}


def parquet_files(out: Path) -> dict[str, bytes]:
    files = {f"articles/{p.name}": p.read_bytes() for p in sorted((out / "articles").glob("*.parquet"))}
    for name in ("rejects.parquet", "duplicates.parquet"):
        files[name] = (out / name).read_bytes()
    return files


# -- reporting -------------------------------------------------------------------------------

def verdict(name: str, value: Any) -> dict[str, Any]:
    what, op, target = GOALS[name]
    if value is None:
        ok = None
    elif op == "<=":
        ok = value <= target
    elif op == ">=":
        ok = value >= target
    else:
        ok = value == target
    return {"goal": what, "op": op, "target": target, "value": value,
            "status": "SKIP" if ok is None else ("PASS" if ok else "FAIL")}


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    for r in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(out)


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="../shared/corpus", help="corpus folder (default ../shared/corpus)")
    ap.add_argument("--json", default="build/bench.json", help="where to write the figures (default build/bench.json)")
    ap.add_argument("--workers", type=int, default=0, help="build workers (default: all cores)")
    ap.add_argument("--factor", type=int, default=4, help="scaling corpus factor (default 4; 0 skips)")
    ap.add_argument("--traf-every", type=int, default=20, help="trafilatura on every N-th post (default 20)")
    ap.add_argument("--traf-passes", type=int, default=3,
                    help="trafilatura passes over its sample; the fastest counts (default 3)")
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask engine run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--repeat", type=int, default=5,
                    help="floor and full build each run this many times, alternating; the ratios use the "
                         "fastest of each (default 5; every time is reported)")
    args = ap.parse_args(argv)

    src = Path(args.input).resolve()
    posts = posts_under(src) if src.is_dir() else []
    if not posts:
        print(f"error: no *.md posts under {src}", file=sys.stderr)
        return 2
    n = len(posts)
    size_mb = sum(p.stat().st_size for p in posts) / MB
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = {"python": platform.python_version(), "machine": platform.machine(), "cores": cores,
           "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1), "revision": git_revision(),
           "workers": args.workers or cores, "input": str(src), "posts": n, "input_mb": round(size_mb, 2)}
    print(f"bench: {n:,} posts, {size_mb:.1f} MB in {src}")
    env["load_avg_start"] = os.getloadavg()[0]
    print(f"       {cores} cores, {env['memory_gb']} GB, Python {env['python']}, revision {env['revision']}, "
          f"load average {env['load_avg_start']:.2f}", flush=True)
    if env["load_avg_start"] > 0.5:
        print("       note: the machine is busy (load average > 0.5): timings include that contention", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    workers = ["--workers", str(args.workers)] if args.workers else []
    result: dict[str, Any] = {"env": env}
    try:
        # Warm the page cache so the first measured run is not the one that pays for the disk:
        # the posts, and the build's own code and libraries (a build of the bundled demo posts;
        # on a cold cache importing pyarrow, lxml and matplotlib alone took ~1 s here).
        for p in posts:
            p.read_bytes()
        # Bytecode for the project's own modules, as any run writes it unless PYTHONDONTWRITEBYTECODE
        # is set (it is on some machines; every build would then compile ~5,000 lines first).
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "pipeline")], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", str(REPO / "pipeline" / "demo_posts"),
                        "--output", str(tmp / "warm-up"), "--no-cache", "--quiet"], cwd=REPO, check=True)
        shutil.rmtree(tmp / "warm-up", ignore_errors=True)

        # The machine is shared: the floor and the full build alternate --repeat times and each
        # keeps its fastest run (the least disturbed one), so both sides of the ratio are
        # measured alike; every run's time is kept in the JSON and printed. Timed builds run
        # without the RSS poller (it competes for the same 2 cores); memory has runs of its own.
        print(f"floor (read + lxml parse + <p> texts, one process) and full build (--no-cache), "
              f"alternating, {args.repeat} times each", flush=True)
        out1 = tmp / "out-1x"
        floors: list[dict[str, Any]] = []
        fulls: list[dict[str, Any]] = []
        for k in range(max(args.repeat, 1)):
            floors.append(floor(posts))
            shutil.rmtree(out1, ignore_errors=True)  # every full build starts from no output
            fulls.append(run_build(["--input", str(src), "--output", str(out1), "--no-cache", *workers],
                                   f"full {k + 1}", memory=False))
        fl = min(floors, key=lambda r: r["seconds"])
        result["floor"] = {**fl, "posts_per_s": n / fl["seconds"], "mb_per_s": size_mb / fl["seconds"],
                           "all_seconds": [r["seconds"] for r in floors]}
        full = dict(min(fulls, key=lambda r: r["seconds"]))
        print("full build with its memory polled", flush=True)
        shutil.rmtree(out1, ignore_errors=True)
        polled = run_build(["--input", str(src), "--output", str(out1), "--no-cache", *workers], "memory")
        full.update(posts_per_s=n / full["seconds"], mb_per_s=size_mb / full["seconds"],
                    ms_per_post=1000 * full["seconds"] / n, all_seconds=[r["seconds"] for r in fulls],
                    peak_rss_tree_mb=polled["peak_rss_tree_mb"], peak_rss_procs=polled["peak_rss_procs"],
                    peak_rss_driver_mb=polled["peak_rss_driver_mb"],
                    max_single_child_rss_mb=polled["max_single_child_rss_mb"],
                    # the 4x run is polled too: its time per post is compared with this run's
                    polled_seconds=polled["seconds"], polled_ms_per_post=1000 * polled["seconds"] / n)
        full["median_pair_ratio"] = statistics.median(f["seconds"] / g["seconds"]
                                                      for f, g in zip(fulls, floors, strict=True))
        result["full_build"] = full

        print("unchanged rebuild", flush=True)
        again = run_build(["--input", str(src), "--output", str(out1), *workers], "rebuild")
        again["share_of_full"] = again["seconds"] / full["seconds"]
        result["unchanged_rebuild"] = again

        print(f"trafilatura.extract on every {args.traf_every}th post, {args.traf_passes} passes", flush=True)
        try:
            tr = trafilatura_sample(posts, args.traf_every, args.traf_passes)
            tr["scaled_seconds"] = tr["seconds_per_post"] * n
            tr["cna_scaled_seconds"] = tr["cna_seconds_per_post"] * n if tr["cna_seconds_per_post"] else None
        except ImportError as exc:  # trafilatura (dev extra) or its lxml_html_clean dependency missing
            print(f"  trafilatura unavailable: {exc}", flush=True)
            tr = {"error": str(exc), "scaled_seconds": None, "sample_posts": 0, "seconds": None,
                  "seconds_per_post": None}
        result["trafilatura"] = tr

        if args.factor and args.factor > 1:
            print(f"scaling: {args.factor}x corpus", flush=True)
            scaled = tmp / f"corpus-{args.factor}x"
            subprocess.run([sys.executable, str(REPO / "scripts" / "make_scaled_corpus.py"), "--input", str(src),
                            "--output", str(scaled), "--factor", str(args.factor)], check=True,
                           stdout=subprocess.DEVNULL)
            n_scaled = len(posts_under(scaled))
            big = run_build(["--input", str(scaled), "--output", str(tmp / f"out-{args.factor}x"), "--no-cache",
                             *workers], f"{args.factor}x")
            big.update(posts=n_scaled, posts_per_s=n_scaled / big["seconds"], ms_per_post=1000 * big["seconds"] / n_scaled)
            big["rss_ratio"] = big["peak_rss_tree_mb"] / full["peak_rss_tree_mb"]
            big["time_per_post_ratio"] = big["ms_per_post"] / full["polled_ms_per_post"]
            result["scaling"] = big
            shutil.rmtree(scaled, ignore_errors=True)
            shutil.rmtree(tmp / f"out-{args.factor}x", ignore_errors=True)

        if not args.no_dask:
            print("dask engine (LocalCluster)", flush=True)
            outd = tmp / "out-dask"
            dk = run_build(["--input", str(src), "--output", str(outd), "--no-cache", "--engine", "dask", *workers],
                           "dask")
            local_files, dask_files = parquet_files(out1), parquet_files(outd)
            dk["identical"] = local_files == dask_files
            dk["files_compared"] = sorted(local_files)
            dk["posts_per_s"] = n / dk["seconds"]
            result["dask"] = dk
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    env["load_avg_end"] = os.getloadavg()[0]
    full, fl, tr, again = result["full_build"], result["floor"], result["trafilatura"], result["unchanged_rebuild"]
    scaling, dk = result.get("scaling"), result.get("dask")
    result["goals"] = {
        "build_over_floor": verdict("build_over_floor", full["seconds"] / fl["seconds"]),
        "trafilatura_over_build": verdict("trafilatura_over_build",
                                          tr["scaled_seconds"] / full["seconds"] if tr["scaled_seconds"] else None),
        "peak_rss_mb": verdict("peak_rss_mb", full["peak_rss_tree_mb"]),
        "scaling_rss_ratio": verdict("scaling_rss_ratio", scaling["rss_ratio"] if scaling else None),
        "scaling_time_per_post_ratio": verdict("scaling_time_per_post_ratio",
                                               scaling["time_per_post_ratio"] if scaling else None),
        "dask_identical": verdict("dask_identical", dk["identical"] if dk else None),
    }

    rows = [
        ["floor (read+lxml+<p>, 1 proc)", fmt(fl["seconds"]), fmt(fl["posts_per_s"], 0), fmt(fl["mb_per_s"], 1), "-", ""],
        ["full build --no-cache", fmt(full["seconds"]), fmt(full["posts_per_s"], 0), fmt(full["mb_per_s"], 1),
         fmt(full["peak_rss_tree_mb"], 0), f"{full['counts']['articles']:,} articles"],
        ["unchanged rebuild", fmt(again["seconds"]), fmt(n / again["seconds"], 0), fmt(size_mb / again["seconds"], 1),
         fmt(again["peak_rss_tree_mb"], 0),
         f"{100 * again['share_of_full']:.1f}% of full, reused {(again['cache'] or {}).get('reused', 0):,}"],
    ]
    if tr["scaled_seconds"]:
        rows.append([f"trafilatura ({tr['sample_posts']} posts, scaled to {n:,})", fmt(tr["scaled_seconds"]),
                     fmt(1 / tr["seconds_per_post"], 0), fmt(size_mb / tr["scaled_seconds"], 1), "-",
                     f"sample {tr['seconds']:.2f}s"])
    if scaling:
        rows.append([f"full build {args.factor}x ({scaling['posts']:,} posts)", fmt(scaling["seconds"]),
                     fmt(scaling["posts_per_s"], 0), fmt(size_mb * args.factor / scaling["seconds"], 1),
                     fmt(scaling["peak_rss_tree_mb"], 0), f"{scaling['ms_per_post']:.3f} ms/post "
                     f"(1x polled {full['polled_ms_per_post']:.3f})"])
    if dk:
        rows.append(["full build --engine dask", fmt(dk["seconds"]), fmt(dk["posts_per_s"], 0),
                     fmt(size_mb / dk["seconds"], 1), fmt(dk["peak_rss_tree_mb"], 0),
                     "identical to local" if dk["identical"] else "DIFFERS from local"])
    print()
    print(table(rows, ["run", "seconds", "posts/s", "MB/s", "peak RSS MB", "note"]))
    print()
    print(f"floor runs {', '.join(f'{s:.2f}' for s in fl['all_seconds'])} s; full build runs "
          f"{', '.join(f'{s:.2f}' for s in full['all_seconds'])} s; the goals use the fastest of each "
          f"(median of the per-pair ratios: {full['median_pair_ratio']:.2f})")
    if tr.get("all_seconds"):
        print(f"trafilatura sample passes {', '.join(f'{s:.2f}' for s in tr['all_seconds'])} s; the fastest counts")
        if tr.get("cna_scaled_seconds"):
            print(f"trafilatura on the sample's {tr['sample_cna_posts']} CNA posts alone, scaled to {n:,}: "
                  f"{tr['cna_scaled_seconds']:.1f} s, {tr['cna_scaled_seconds'] / full['seconds']:.1f} x the build "
                  "(earlier benches sampled CNA posts only)")
    if full.get("timings_s"):
        print("full build stages (manifest timings_s): "
              + ", ".join(f"{k} {v:.2f}s" for k, v in full["timings_s"].items()))
    print(f"load average {env['load_avg_start']:.2f} at start, {env['load_avg_end']:.2f} at end "
          f"({cores} cores): other work on the machine slows every figure above")
    print(f"peak RSS = sum over the build's process tree (polled every 20 ms, {full['peak_rss_procs']} processes "
          f"at peak); driver alone {full['peak_rss_driver_mb']:.0f} MB"
          + (f", 4x driver {scaling['peak_rss_driver_mb']:.0f} MB" if scaling else ""))
    if (again.get("cache") or {}).get("processed"):
        print(f"WARNING: the unchanged rebuild processed {again['cache']['processed']:,} posts instead of reusing "
              "them: did pipeline code change during the run? (the cache is keyed by a code fingerprint)")
    print()
    goal_rows = []
    for g in result["goals"].values():
        value = g["value"]
        shown = fmt(value) if not isinstance(value, bool) else ("yes" if value else "no")
        goal_rows.append([g["goal"], shown, f"{g['op']} {fmt(g['target'])}", g["status"]])
    print(table(goal_rows, ["goal", "measured", "target", "result"]))
    failed = [g["goal"] for g in result["goals"].values() if g["status"] == "FAIL"]
    print()
    print(f"{len(failed)} goal(s) FAILED: " + "; ".join(failed) if failed else "all goals PASS")

    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"figures written to {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
