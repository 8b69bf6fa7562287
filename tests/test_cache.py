"""The build cache prunes itself: a folder per code version, old versions and long-unused shards go."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa

from pipeline.batches import code_fingerprint
from pipeline.build import BuildOptions, build
from pipeline.cache import OTHER_CODE_GRACE_S, UNUSED_SHARD_DAYS, USED_MARK_EVERY_S, ShardStore

REPO = Path(__file__).resolve().parent.parent
DEMO_POSTS = REPO / "pipeline" / "demo_posts"
DAY = 86400


def _ipc() -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"x": [1, 2, 3]})
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _build(inp: Path, out: Path, cache: Path) -> dict:
    return build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1,
                              write_card=False))


def test_shards_live_in_the_folder_of_their_code_version(tmp_path: Path) -> None:
    _build(DEMO_POSTS, tmp_path / "out", tmp_path / "cache")
    folders = [p.name for p in (tmp_path / "cache" / "shards").iterdir()]
    assert folders == [code_fingerprint()]
    assert list((tmp_path / "cache" / "shards" / code_fingerprint()).rglob("*.arrow"))


def test_prune_keeps_used_and_recent_shards_and_drops_long_unused_ones(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    for key in ("aa-used", "bb-unused-old", "cc-unused-recent"):
        store.put(key, _ipc(), {"key": key})
    for key in ("aa-used", "bb-unused-old"):
        _age(store.arrow_path(key).with_suffix(".json"), (UNUSED_SHARD_DAYS + 1) * DAY)
    _age(store.arrow_path("cc-unused-recent").with_suffix(".json"), (UNUSED_SHARD_DAYS - 1) * DAY)
    # leftovers of a killed build: a temporary file, and an Arrow file whose meta was never written
    tmp_file = store.folder / "dd" / ".tmp-abc"
    tmp_file.parent.mkdir(parents=True)
    tmp_file.write_bytes(b"half")
    orphan = store.arrow_path("ee-no-meta")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(_ipc())
    fresh_tmp = store.folder / "dd" / ".tmp-now"
    fresh_tmp.write_bytes(b"being written")
    _age(tmp_file, OTHER_CODE_GRACE_S + 60)
    _age(orphan, OTHER_CODE_GRACE_S + 60)

    report = store.prune(["aa-used"])

    assert store.get_meta("aa-used") is not None
    assert store.get_meta("cc-unused-recent") is not None
    assert store.get_meta("bb-unused-old") is None
    assert not store.arrow_path("bb-unused-old").exists()
    assert not tmp_file.exists() and not orphan.exists()
    assert fresh_tmp.exists()  # may belong to a build running now
    assert report.shards == 1 and report.code_versions == 0
    assert report.bytes >= len(_ipc()) * 2  # the pruned shard and the orphan Arrow file


def test_reading_a_shard_marks_it_used(tmp_path: Path) -> None:
    store = ShardStore(tmp_path, "c0de")
    store.put("k1", _ipc(), {"key": "k1"})
    meta_file = store.arrow_path("k1").with_suffix(".json")
    _age(meta_file, (UNUSED_SHARD_DAYS + 1) * DAY)
    assert store.get_meta("k1") is not None  # a build reusing it, found through its index
    assert time.time() - meta_file.stat().st_mtime < USED_MARK_EVERY_S
    assert store.prune([]).shards == 0
    assert store.get_meta("k1") is not None


def test_build_prunes_other_code_versions_after_their_grace(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shards = cache / "shards"
    old_version = shards / "0123456789abcdef" / "ab"
    old_version.mkdir(parents=True)
    (old_version / "ab12.arrow").write_bytes(b"x" * 1000)
    (old_version / "ab12.json").write_text("{}")
    _age(old_version.parent, OTHER_CODE_GRACE_S + 60)
    running_version = shards / "fedcba9876543210"  # another build of other code, running now
    running_version.mkdir()
    (running_version / "f.json").write_text("{}")
    legacy = shards / "cd"  # the layout before folders per version: shards/<key[:2]>/<key>.*
    legacy.mkdir()
    (legacy / "cd34.arrow").write_bytes(b"y" * 500)
    _age(legacy, OTHER_CODE_GRACE_S + 60)

    manifest = _build(DEMO_POSTS, tmp_path / "out", cache)

    assert sorted(p.name for p in shards.iterdir()) == sorted([code_fingerprint(), "fedcba9876543210"])
    pruned = manifest["cache"]["pruned"]
    assert pruned["code_versions"] == 2 and pruned["shards"] == 0
    assert pruned["bytes"] >= 1500
    # what was pruned is in the published manifest too, and the next build finds nothing to prune
    again = _build(DEMO_POSTS, tmp_path / "out2", cache)
    assert again["cache"]["pruned"] == {"shards": 0, "code_versions": 0, "bytes": 0}
    assert again["cache"]["processed"] == 0


def test_cli_reports_what_was_pruned(tmp_path: Path) -> None:
    import subprocess
    import sys

    stale = tmp_path / "cache" / "shards" / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "x.json").write_text("{}")
    _age(stale, OTHER_CODE_GRACE_S + 60)
    r = subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", str(DEMO_POSTS), "--output",
                        str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--workers", "1",
                        "--no-card"], capture_output=True, text=True, cwd=REPO, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr
    assert "cache pruned: 0 unused shard(s), 1 folder(s) of other code versions" in r.stdout
