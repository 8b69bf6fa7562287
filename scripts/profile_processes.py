"""CPU time of each process of a build: the driver, the card's figure process, the workers.

    .venv/bin/python scripts/profile_processes.py [CORPUS] [-- extra build options]

Runs `python -m pipeline build --input CORPUS --output TMP --no-cache --quiet` and polls the
process tree every 10 ms with psutil; prints the wall time and, per process, the user and system
CPU seconds last seen before it ended (so slightly under the truth), and the manifest's stage
timings. On 2 cores, wall time can be no less than the summed CPU over 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    corpus = argv[0] if argv and not argv[0].startswith("-") else str(ROOT.parent / "shared" / "corpus")
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    out = Path(tempfile.mkdtemp(prefix="profile-processes-"))
    cmd = [sys.executable, "-m", "pipeline", "build", "--input", corpus, "--output", str(out / "out"),
           "--cache-dir", str(out / "cache"), "--no-cache", "--quiet", *extra]
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT)
        root = psutil.Process(proc.pid)
        seen: dict[int, tuple[float, float, str]] = {}
        order: list[int] = []
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in tree:
                try:
                    cpu = p.cpu_times()
                except psutil.Error:
                    continue
                if p.pid not in seen:
                    order.append(p.pid)
                role = "driver" if p.pid == proc.pid else "child"
                seen[p.pid] = (cpu.user, cpu.system, role)
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"build failed ({proc.returncode})", file=sys.stderr)
            return 1
        timings = json.loads((out / "out" / "manifest.json").read_text(encoding="utf-8"))["timings_s"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"wall {wall:.2f} s; stages (manifest): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    total = 0.0
    for n, pid in enumerate(order):
        user, system, role = seen[pid]
        total += user + system
        label = role if role == "driver" else ("child (first forked: the figure process)" if n == 1 else "child")
        print(f"  {label:42s} user {user:5.2f} s  system {system:5.2f} s")
    print(f"  {'sum':42s} {total:5.2f} s CPU = {total / wall:.2f} cores busy on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
