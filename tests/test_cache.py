"""The build cache prunes itself: a folder per code version; other versions and long-unused shards go,
never while a build that needs them runs, and never anything the store did not name."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import pipeline.cache as cache_mod
from pipeline.batches import code_fingerprint
from pipeline.build import BuildOptions, build
from pipeline.cache import OTHER_CODE_GRACE_S, UNUSED_SHARD_DAYS, USED_MARK_EVERY_S, ShardStore

REPO = Path(__file__).resolve().parent.parent
DEMO_POSTS = REPO / "pipeline" / "demo_posts"
DAY = 86400
OTHER = "0123456789abcdef"  # a code fingerprint that is not this code's


def key(name: str) -> str:
    """A batch key as the pipeline makes them (a SHA-256 hex digest)."""
    return hashlib.sha256(name.encode()).hexdigest()


def _ipc() -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"x": [1, 2, 3]})
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def _build(inp: Path, out: Path, cache: Path) -> dict[str, Any]:
    return build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1,
                              write_card=False))


@contextmanager
def running_build(cache: Path, code: str) -> Iterator[None]:
    """Another build of `code` in progress: it holds that version's shared lock."""
    lock = cache / "locks" / f"{code}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        yield
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A lock bug shows as a build waiting forever: fail the test instead."""
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError("test took over 120 s: a build is probably waiting for a cache lock")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _can_lock(cache: Path, code: str, how: int) -> bool:
    """Could another process take this version's lock (`how`: fcntl.LOCK_EX or LOCK_SH) now?"""
    fd = os.open(cache / "locks" / f"{code}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _meta(store: ShardStore, k: str) -> Path:
    return store.arrow_path(k).with_suffix(".json")


def test_shards_live_in_the_folder_of_their_code_version(tmp_path: Path) -> None:
    _build(DEMO_POSTS, tmp_path / "out", tmp_path / "cache")
    folders = [p.name for p in (tmp_path / "cache" / "shards").iterdir()]
    assert folders == [code_fingerprint()]
    assert list((tmp_path / "cache" / "shards" / code_fingerprint()).rglob("*.arrow"))


def test_prune_keeps_used_and_recent_shards_and_drops_long_unused_ones(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    used, old, recent, old_arrow = key("used"), key("unused-old"), key("unused-recent"), key("old-arrow")
    for k in (used, old, recent, old_arrow):
        store.put(k, _ipc(), {"key": k})
    for k in (used, old):
        _age(_meta(store, k), (UNUSED_SHARD_DAYS + 1) * DAY)
    _age(_meta(store, recent), (UNUSED_SHARD_DAYS - 1) * DAY)
    _age(store.arrow_path(old_arrow), (UNUSED_SHARD_DAYS + 1) * DAY)  # a shard's age is its meta's
    # leftovers of a killed build: a temporary file, and an Arrow file whose meta was never written
    leftover_tmp = store.folder / "dd" / ".tmp-abc"
    leftover_tmp.parent.mkdir(parents=True)
    leftover_tmp.write_bytes(b"half")
    orphan = store.arrow_path(key("no-meta"))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(_ipc())
    fresh_tmp = store.folder / "dd" / ".tmp-now"
    fresh_tmp.write_bytes(b"being written")
    fresh_orphan = store.arrow_path(key("meta-coming"))  # a worker is between its two renames
    fresh_orphan.parent.mkdir(parents=True, exist_ok=True)
    fresh_orphan.write_bytes(_ipc())
    _age(leftover_tmp, OTHER_CODE_GRACE_S + 60)
    _age(orphan, OTHER_CODE_GRACE_S + 60)
    shard_bytes = _meta(store, old).stat().st_size + store.arrow_path(old).stat().st_size

    store.hold()
    try:
        report = store.prune([used])
    finally:
        store.release()

    for k in (used, recent, old_arrow):
        assert store.get_meta(k) is not None, k
    assert store.get_meta(old) is None
    assert not store.arrow_path(old).exists()
    assert not leftover_tmp.exists() and not orphan.exists()
    assert fresh_tmp.exists() and fresh_orphan.exists()  # may belong to a build running now
    assert (report.shards, report.leftovers, report.code_versions) == (1, 2, 0)
    assert report.bytes == shard_bytes + len(b"half") + len(_ipc())


def test_reading_a_shard_marks_it_used(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    k = key("k1")
    store.put(k, _ipc(), {"key": k})
    _age(_meta(store, k), (UNUSED_SHARD_DAYS + 1) * DAY)
    assert store.get_meta(k) is not None  # a build reusing it, found through its index
    assert time.time() - _meta(store, k).stat().st_mtime < USED_MARK_EVERY_S
    store.hold()
    try:
        assert store.prune([]).shards == 0
    finally:
        store.release()
    assert store.get_meta(k) is not None


def test_own_unused_shards_stay_while_another_build_of_this_version_runs(tmp_path: Path) -> None:
    """That build may have just found the shard (get_meta) and not read it yet."""
    store = ShardStore(tmp_path, "c0de")
    k = key("theirs")
    store.put(k, _ipc(), {"key": k})
    _age(_meta(store, k), (UNUSED_SHARD_DAYS + 1) * DAY)
    with running_build(tmp_path, "c0de"):
        store.hold()
        try:
            assert store.prune([]).shards == 0
        finally:
            store.release()
    assert _meta(store, k).exists() and store.arrow_path(k).exists()
    store.hold()
    try:
        assert store.prune([]).shards == 1
    finally:
        store.release()


def test_prune_needs_the_lock(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    k = key("x")
    store.put(k, _ipc(), {"key": k})
    _age(_meta(store, k), (UNUSED_SHARD_DAYS + 1) * DAY)
    assert store.prune([]).shards == 0  # no hold(): nothing is removed
    assert _meta(store, k).exists()


def test_build_prunes_other_code_versions_after_their_grace(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shards = cache / "shards"
    old_version = shards / OTHER / "ab"
    old_version.mkdir(parents=True)
    (old_version / f"{key('a')}.arrow").write_bytes(b"x" * 1000)
    (old_version / f"{key('a')}.json").write_text("{}")
    _age(old_version.parent, OTHER_CODE_GRACE_S + 60)
    recent_version = shards / "fedcba9876543210"  # built within the grace: kept for a while
    recent_version.mkdir()
    legacy = shards / "cd"  # the layout before folders per version: shards/<key[:2]>/<key>.*
    legacy.mkdir()
    (legacy / f"{key('b')}.arrow").write_bytes(b"y" * 500)
    _age(legacy, OTHER_CODE_GRACE_S + 60)
    # not the store's: a user's folder that happens to be called shards/, a look-alike, a link
    foreign = [shards / "train", shards / "ef"]
    for folder in foreign:
        folder.mkdir()
        (folder / "part-000.tar").write_bytes(b"data")
        _age(folder, OTHER_CODE_GRACE_S + 60)
    (shards / "README.txt").write_text("mine")
    target = tmp_path / "elsewhere" / "ab"
    target.mkdir(parents=True)
    (target / f"{key('c')}.json").write_text("{}")
    link = shards / "1111111111111111"
    link.symlink_to(target.parent)
    _age(link, OTHER_CODE_GRACE_S + 60)
    own = shards / code_fingerprint()  # this version, however old: never pruned as a whole
    own.mkdir()
    _age(own, OTHER_CODE_GRACE_S + 60)

    manifest = _build(DEMO_POSTS, tmp_path / "out", cache)

    left = sorted(p.name for p in shards.iterdir())
    assert left == sorted([code_fingerprint(), "fedcba9876543210", "train", "ef", "README.txt", "1111111111111111"])
    assert (target / f"{key('c')}.json").exists()
    assert manifest["cache"]["pruned"] == {"shards": 0, "leftovers": 0, "code_versions": 2, "bytes": 1502}
    # the next build finds nothing to prune, and reuses everything
    again = _build(DEMO_POSTS, tmp_path / "out2", cache)
    assert again["cache"]["pruned"] == {"shards": 0, "leftovers": 0, "code_versions": 0, "bytes": 0}
    assert again["cache"]["processed"] == 0


def test_running_build_of_another_version_is_never_pruned(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    other = cache / "shards" / OTHER / "ab"
    other.mkdir(parents=True)
    (other / f"{key('a')}.json").write_text("{}")
    _age(other.parent, OTHER_CODE_GRACE_S + 60)  # started long ago, still running
    with running_build(cache, OTHER):
        first = _build(DEMO_POSTS, tmp_path / "out", cache)
    assert first["cache"]["pruned"]["code_versions"] == 0
    assert (other / f"{key('a')}.json").exists()
    second = _build(DEMO_POSTS, tmp_path / "out2", cache)  # that build has ended
    assert second["cache"]["pruned"]["code_versions"] == 1
    assert not other.parent.exists()


def test_build_holds_its_lock_and_names_its_shards_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    seen: dict[str, Any] = {}
    real_prune = ShardStore.prune

    def spy(self: ShardStore, used: Any, now: float | None = None) -> Any:
        seen["used"] = set(used)
        lock = os.open(cache / "locks" / f"{self.code}.lock", os.O_RDWR)
        try:  # another process's exclusive lock must fail while this build holds the shared one
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(lock)
        return real_prune(self, used, now)

    monkeypatch.setattr(cache_mod.ShardStore, "prune", spy)
    _build(DEMO_POSTS, tmp_path / "out", cache)
    on_disk = {p.stem for p in (cache / "shards" / code_fingerprint()).rglob("*.arrow")}
    assert seen["used"] == on_disk and on_disk
    lock = os.open(cache / "locks" / f"{code_fingerprint()}.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the build ended
    finally:
        os.close(lock)


def test_cli_reports_what_was_pruned(tmp_path: Path) -> None:
    stale = tmp_path / "cache" / "shards" / OTHER
    stale.mkdir(parents=True)
    (stale / "x.json").write_text("{}")
    _age(stale, OTHER_CODE_GRACE_S + 60)
    r = subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", str(DEMO_POSTS), "--output",
                        str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--workers", "1",
                        "--no-card"], capture_output=True, text=True, cwd=REPO, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "cache pruned: 0 unused shard(s), 1 folder(s) of other code versions, 0 leftover(s)" in r.stdout


def test_hold_marks_the_version_used(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    store.folder.mkdir(parents=True)
    _age(store.folder, OTHER_CODE_GRACE_S + 60)
    store.hold()
    try:
        assert time.time() - store.folder.stat().st_mtime < 60
        assert not _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)
        assert _can_lock(tmp_path, "c0de", fcntl.LOCK_SH)  # other builds of this version may run
    finally:
        store.release()
    assert _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)


def test_lock_is_shared_again_after_prune(tmp_path: Path) -> None:
    """Pruning its own version takes the lock exclusively, then gives it back as shared, whether or
    not another build of the version was running: a build starting meanwhile never waits for the
    rest of this one (its publish may be a slow upload)."""
    store = ShardStore(tmp_path, "c0de")
    store.hold()
    try:
        store.prune([])
        assert _can_lock(tmp_path, "c0de", fcntl.LOCK_SH)
        assert not _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)
        with running_build(tmp_path, "c0de"):
            store.prune([])  # cannot prune its own shards now
        assert not _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)  # still held
    finally:
        store.release()


def test_forked_children_do_not_keep_the_lock(tmp_path: Path) -> None:
    """A worker left behind by a killed driver must not hold the version's lock forever."""
    store = ShardStore(tmp_path, "c0de")
    store.hold()
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a worker stuck reading its pipe, as after its driver died
        try:
            os.close(write_end)
            os.write(ready_write, b"r")  # past the fork handlers
            os.read(read_end, 1)
        finally:
            os._exit(0)
    os.close(read_end)
    os.close(ready_write)
    try:
        assert os.read(ready_read, 1) == b"r"
        assert not _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)
        store.release()  # the driver ends (or is killed)
        assert _can_lock(tmp_path, "c0de", fcntl.LOCK_EX)  # although the child still runs
    finally:
        os.close(write_end)
        os.close(ready_read)
        os.waitpid(pid, 0)


def test_build_with_workers_prunes_its_own_unused_shards(tmp_path: Path) -> None:
    """The local engine's workers share the driver's lock: its own-version pruning still runs."""
    cache = tmp_path / "cache"
    build(BuildOptions(input=str(DEMO_POSTS), output=str(tmp_path / "a"), cache_dir=str(cache), workers=2,
                       write_card=False))
    folder = cache / "shards" / code_fingerprint()
    first = {p.stem for p in folder.rglob("*.json")}
    for meta in folder.rglob("*.json"):
        _age(meta, (UNUSED_SHARD_DAYS + 1) * DAY)
    other_input = tmp_path / "b"
    other_input.mkdir()
    for post in sorted(DEMO_POSTS.rglob("*.md"))[:3]:
        shutil.copy(post, other_input / f"copy-{post.name}")
    manifest = build(BuildOptions(input=str(other_input), output=str(tmp_path / "b-out"), cache_dir=str(cache),
                                  workers=2, write_card=False))
    assert manifest["cache"]["pruned"]["shards"] == len(first) > 0
    assert not first & {p.stem for p in folder.rglob("*.json")}
