"""How much two busy cores slow each other: the workers' whole job, alone and twice at once.

    .venv/bin/python scripts/profile_parallel.py [CORPUS] [--copies 2] [--repeat 2]

Each run cuts CORPUS into the build's batches and runs every one through
`pipeline.batches.process_batch` (the local engine's unit of work) in one process, shards going
to a temporary cache; first one such process alone, then `--copies` of them started together.
Prints each process's CPU seconds. On an ideal machine the CPU per process is the same either
way; the floor in `make bench` is one process alone, the build is several at once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_PROCESS = """
import sys, tempfile, time
from pipeline.batches import BatchSettings, make_batches, process_batch, skip_pandas_probe
from pipeline.build import BuildOptions
from pipeline.discover import discover_counted

skip_pandas_probe()
options_key = BuildOptions(input="", output="").options_key()
_, items = discover_counted(sys.argv[1], count=False)
batches = list(make_batches(items, options_key))
settings = BatchSettings(8 << 20, options_key, sys.argv[2], use_cache=False)
start = time.process_time()
for batch in batches:
    process_batch(batch, settings)
print(f"{time.process_time() - start:.2f}")
"""


def run(corpus: str, copies: int, cache: str) -> list[float]:
    procs = [subprocess.Popen([sys.executable, "-c", ONE_PROCESS, corpus, f"{cache}/{k}"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for k in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-parallel-") as cache:
        for _ in range(args.repeat):
            alone = run(args.corpus, 1, cache)
            together = run(args.corpus, args.copies, cache)
            print(f"alone: {alone[0]:.2f} s of CPU; {args.copies} at once: "
                  + ", ".join(f"{c:.2f}" for c in together) + " s of CPU each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
