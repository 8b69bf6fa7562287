"""Nothing half-written: a build killed at any moment (SIGKILL), or failing with an exception,
leaves the previously published dataset complete, valid and in place; the next build works."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _synthetic_posts import make_post, write_posts

from pipeline.build import BuildOptions, build
from pipeline.output import builds_dir
from pipeline.validate import validate_dataset

REPO = Path(__file__).resolve().parent.parent
N_POSTS = 3000


def _digest(out: Path) -> dict[str, str]:
    """SHA-256 of every file of the published dataset, by relative path."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _data_digest(out: Path) -> dict[str, str]:
    return {k: v for k, v in _digest(out).items() if k.endswith(".parquet")}


def _start(inp: Path, out: Path, cache: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "pipeline", "build", "--input", str(inp), "--output", str(out),
                             "--cache-dir", str(cache), "--workers", "1", "--no-card", "--quiet", *extra],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the build and its worker processes. True when it was still running."""
    running = proc.poll() is None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    return running


def _wait_for(pred, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None and not pred():
        time.sleep(0.001)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("atomic")
    inp = root / "in"
    write_posts(inp, N_POSTS)
    out, cache = root / "outputs", root / "cache"
    build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=2, write_card=False))
    assert validate_dataset(out) == []
    # change the input so that every later build writes a different dataset
    for n in range(N_POSTS, N_POSTS + 150):
        rel, text = make_post(random.Random(n), n)
        (inp / rel).parent.mkdir(parents=True, exist_ok=True)
        (inp / rel).write_text(text, encoding="utf-8")
    for p in sorted(inp.rglob("*.md"))[:40]:
        p.write_bytes(p.read_bytes().replace("。".encode(), "！".encode(), 1))
    return {"root": root, "in": inp, "out": out, "cache": cache}


def test_sigkill_at_any_moment_keeps_previous_dataset(world: dict[str, Path]) -> None:
    inp, out, cache = world["in"], world["out"], world["cache"]
    target = os.readlink(out)
    before = _digest(out)
    old_input_target = target  # the dataset of the input before it was changed
    builds = builds_dir(out)

    def staging_exists() -> bool:
        return any(p.name.startswith("tmp-") for p in builds.iterdir())

    def parquet_started() -> bool:
        return any(builds.glob("tmp-*/articles/*.parquet"))

    killed_running = 0
    moments: list[str] = []
    for round_no in range(2):
        for moment in (0.05, 0.2, 0.5, 0.8, 1.1, "staging", "parquet"):
            # --no-cache: every attempt processes every post (and writes shards) instead of reusing
            proc = _start(inp, out, cache, "--no-cache")
            if isinstance(moment, float):
                time.sleep(moment)
            else:
                _wait_for(staging_exists if moment == "staging" else parquet_started, proc)
            was_running = _kill(proc)
            if not was_running or os.readlink(out) != target:
                # finished before the kill, or killed after it published (while exiting): a complete
                # new dataset replaced the old one; note it as the "previous" to test against next
                if not was_running:
                    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
                assert validate_dataset(out) == []
                target, before = os.readlink(out), _digest(out)
                continue
            killed_running += 1
            moments.append(f"{round_no}:{moment}")
            assert os.readlink(out) == target, f"output moved by a killed build at {moment}"
            assert _digest(out) == before, f"dataset changed by a killed build at {moment}"
            assert validate_dataset(out) == [], moment
    assert killed_running >= 8, f"only {killed_running} kills landed while the build ran: {moments}"

    # the next build completes, cleans the leftovers and publishes the new input (with the cache the
    # killed builds filled: partial shards must never leak into it)
    proc = _start(inp, out, cache)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert validate_dataset(out) == []
    # (a late kill may already have published the new input; then this build is up to date)
    assert os.readlink(out) != old_input_target
    leftovers = sorted(p.name for p in builds.iterdir() if p.name.startswith(("tmp-", ".link-")))
    assert leftovers == []
    assert len([p for p in builds.iterdir() if p.name.startswith("build-")]) <= 2  # current + previous

    # and it is the same dataset a clean build of the same input makes
    fresh = world["root"] / "fresh"
    build(BuildOptions(input=str(inp), output=str(fresh / "out"), cache_dir=str(fresh / "cache"), workers=1,
                       use_cache=False, write_card=False))
    assert _data_digest(out) == _data_digest(fresh / "out")


def test_killed_build_leaves_no_process_behind(world: dict[str, Path]) -> None:
    # SIGKILL to the build's own process only (as an OOM killer or `kill -9 PID` does): its workers
    # and figure process must not live on, each waiting on a pipe the others hold open
    psutil = pytest.importorskip("psutil")
    inp, cache = world["in"], world["cache"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "build", "--input", str(inp), "--output",
                             str(world["root"] / "killed-out"), "--cache-dir", str(cache), "--workers", "2",
                             "--no-cache", "--quiet"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    children: list = []
    try:
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end and len(children) < 3:  # 2 workers + figures
            try:
                children = psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                break
            time.sleep(0.005)
        assert len(children) >= 3, f"the build ended before its workers and figure process were seen: {children}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"processes left behind by the killed build: {alive}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left, so a failure does not leak processes
        except ProcessLookupError:
            pass


def test_failed_build_leaves_previous_dataset(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    inp, out, cache = world["in"], world["out"], world["cache"]
    build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1, write_card=False))
    target, before = os.readlink(out), _digest(out)

    import pipeline.build as build_mod
    import pipeline.output as output_mod

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # an exception while writing the Parquet files
    with monkeypatch.context() as m:
        m.setattr(build_mod, "write_articles", boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1,
                               use_cache=False, write_card=False))
    assert os.readlink(out) == target and _digest(out) == before
    assert validate_dataset(out) == []
    assert not [p for p in builds_dir(out).iterdir() if p.name.startswith("tmp-")]

    # an exception in the very last step, the swap of the link
    with monkeypatch.context() as m:
        m.setattr(output_mod.os, "replace", boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1,
                               use_cache=False, write_card=False))
    assert os.readlink(out) == target and _digest(out) == before
    assert validate_dataset(out) == []

    # an output that cannot be written: the previous dataset elsewhere is untouched, the error is clear
    blocker = world["root"] / "blocker"
    blocker.write_text("a file, not a folder")
    from pipeline.errors import BuildError

    with pytest.raises(BuildError, match="not writable"):
        build(BuildOptions(input=str(inp), output=str(blocker / "out"), cache_dir=str(cache), workers=1,
                           write_card=False))
    assert os.readlink(out) == target and _digest(out) == before

    # and the next normal build recovers
    build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1, write_card=False))
    assert validate_dataset(out) == []
    assert sorted(p.name for p in builds_dir(out).iterdir() if not p.name.startswith("build-")) == []
