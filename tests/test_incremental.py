"""Incremental rebuilds: unchanged input processes nothing; an edit, an addition and a removal
reprocess only the batches around them and give the same bytes as a full build of the new state."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from _synthetic_posts import make_post, write_posts

import pipeline.batches as batches_mod
from pipeline.build import BuildOptions, build
from pipeline.validate import validate_dataset

N_POSTS = 2000


def data_digest(out: Path) -> dict[str, str]:
    files = sorted((out / "articles").glob("*.parquet")) + [out / "rejects.parquet", out / "duplicates.parquet"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def run(inp: Path, out: Path, cache: Path, **kw: Any) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    manifest = build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), write_card=False,
                                  workers=kw.pop("workers", 2), **kw))
    return manifest, time.perf_counter() - t0


def full_build(inp: Path, root: Path) -> Path:
    """A --no-cache build of the input in a fresh place: the reference bytes."""
    out = root / "ref-out"
    if root.exists():
        shutil.rmtree(root)
    run(inp, out, root / "ref-cache", use_cache=False, workers=1)
    return out


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    # batches of about 256 posts (at most 512), so that 2,000 posts make enough of them for "only the
    # batches around a change are processed" to mean something (forked workers inherit the patch)
    monkeypatch.setattr(batches_mod, "CHUNK_BITS", 8)
    monkeypatch.setattr(batches_mod, "MAX_BATCH", 512)
    inp = tmp_path / "in"
    write_posts(inp, N_POSTS, seed=3)
    return {"in": inp, "out": tmp_path / "out", "cache": tmp_path / "cache", "tmp": tmp_path}


def test_unchanged_rebuild_processes_nothing(world: dict[str, Path]) -> None:
    first, t_full = run(world["in"], world["out"], world["cache"])
    assert first["cache"]["processed"] == N_POSTS
    before = data_digest(world["out"])
    again, t_again = run(world["in"], world["out"], world["cache"])
    assert again["cache"]["processed"] == 0
    assert again["cache"]["reused"] == N_POSTS
    assert again["counts"] == first["counts"]
    assert data_digest(world["out"]) == before
    assert t_again < t_full
    print(f"\nfull build {t_full:.2f}s, unchanged rebuild {t_again:.2f}s")


def test_edit_add_remove(world: dict[str, Path]) -> None:
    inp = world["in"]
    first, t_full = run(inp, world["out"], world["cache"])
    old_rows = {r["source_path"]: r for r in pq.read_table(world["out"] / "articles",
                                                         columns=["source_path", "text", "article_id"]).to_pylist()}
    posts = sorted(p.relative_to(inp).as_posix() for p in inp.rglob("*.md"))

    # edit one post (same path, new body), add one, remove one
    edited = posts[100]
    assert edited in old_rows
    _, new_text = make_post(random.Random(100), 100, version=1)
    (inp / edited).write_text(new_text, encoding="utf-8")
    added_rel, added_text = make_post(random.Random(9999), 9999)
    (inp / added_rel).parent.mkdir(parents=True, exist_ok=True)
    (inp / added_rel).write_text(added_text, encoding="utf-8")
    removed = posts[1500]
    assert removed in old_rows
    (inp / removed).unlink()

    second, t_inc = run(inp, world["out"], world["cache"])
    c = second["cache"]
    assert c["processed"] + c["reused"] == N_POSTS
    assert 1 <= c["processed"] <= 3 * batches_mod.MAX_BATCH, c  # only the batches around the three changes
    assert c["reused"] >= N_POSTS - 3 * batches_mod.MAX_BATCH
    assert second["counts"]["inputs"] == N_POSTS
    assert validate_dataset(world["out"]) == []

    new_rows = {r["source_path"]: r for r in pq.read_table(world["out"] / "articles",
                                                         columns=["source_path", "text", "article_id"]).to_pylist()}
    assert removed not in new_rows
    assert added_rel in new_rows
    assert "更新第1版" in new_rows[edited]["text"] and "更新第1版" not in old_rows[edited]["text"]
    unchanged = set(old_rows) - {edited, removed}
    assert all(new_rows[p] == old_rows[p] for p in unchanged)

    # byte-identical to a full, cache-free build of the new state
    ref = full_build(inp, world["tmp"] / "ref")
    assert data_digest(world["out"]) == data_digest(ref)
    print(f"\nfull build {t_full:.2f}s; after edit+add+remove: {t_inc:.2f}s, "
          f"processed {c['processed']}, reused {c['reused']}")


def test_no_cache_processes_everything(world: dict[str, Path]) -> None:
    run(world["in"], world["out"], world["cache"])
    before = data_digest(world["out"])
    manifest, _ = run(world["in"], world["out"], world["cache"], use_cache=False)
    assert manifest["cache"]["processed"] == N_POSTS
    assert manifest["cache"]["reused"] == 0
    assert data_digest(world["out"]) == before


def test_deleted_output_rebuilds_from_cache(world: dict[str, Path]) -> None:
    run(world["in"], world["out"], world["cache"])
    before = data_digest(world["out"])
    target = world["out"].resolve()
    world["out"].unlink()  # the link ...
    shutil.rmtree(target.parent)  # ... and every build folder
    manifest, t = run(world["in"], world["out"], world["cache"])
    assert manifest["cache"]["processed"] == 0
    assert manifest["cache"]["reused"] == N_POSTS
    assert manifest.get("up_to_date") is not True
    assert data_digest(world["out"]) == before
    assert validate_dataset(world["out"]) == []


def test_damaged_output_is_rewritten(world: dict[str, Path]) -> None:
    """An output file damaged behind our back is not taken as up to date."""
    run(world["in"], world["out"], world["cache"])
    before = data_digest(world["out"])
    part = next((world["out"] / "articles").glob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-100])
    manifest, _ = run(world["in"], world["out"], world["cache"])
    assert manifest["cache"]["processed"] == 0 and manifest.get("up_to_date") is not True
    assert data_digest(world["out"]) == before


def test_damaged_cache_shard_is_recomputed(world: dict[str, Path]) -> None:
    run(world["in"], world["out"], world["cache"])
    before = data_digest(world["out"])
    shards = sorted((world["cache"] / "shards").rglob("*.arrow"))
    assert shards
    shards[0].write_bytes(shards[0].read_bytes()[:50])  # truncated by a disk error
    shutil.rmtree(world["out"].resolve().parent)
    world["out"].unlink()
    manifest, _ = run(world["in"], world["out"], world["cache"])
    assert 1 <= manifest["cache"]["processed"] <= batches_mod.MAX_BATCH
    assert data_digest(world["out"]) == before


def test_same_size_edit_is_seen(world: dict[str, Path]) -> None:
    """An edit that keeps the file size (same-length replacement) is picked up."""
    inp = world["in"]
    run(inp, world["out"], world["cache"])
    post = sorted(inp.rglob("*.md"))[10]
    data = post.read_bytes()
    assert "政府".encode() in data or "今天".encode() in data
    new = data.replace("今天".encode(), "明天".encode(), 1) if "今天".encode() in data else \
        data.replace("政府".encode(), "市府".encode(), 1)
    assert len(new) == len(data) and new != data
    post.write_bytes(new)
    manifest, _ = run(inp, world["out"], world["cache"])
    assert manifest["cache"]["processed"] >= 1
    ref = full_build(inp, world["tmp"] / "ref")
    assert data_digest(world["out"]) == data_digest(ref)


def test_same_size_edit_with_restored_mtime_is_seen(world: dict[str, Path]) -> None:
    """A rewrite in place that keeps the size and restores the mtime (`touch -r`, a sync tool
    preserving times) still changes the file's ctime: the rebuild reads it again."""
    inp = world["in"]
    run(inp, world["out"], world["cache"])
    post = sorted(inp.rglob("*.md"))[10]
    data, st = post.read_bytes(), post.stat()
    new = data.replace("。".encode(), "！".encode(), 1)
    assert len(new) == len(data) and new != data
    time.sleep(0.01)  # a ctime the kernel can tell apart
    post.write_bytes(new)
    os.utime(post, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert post.stat().st_mtime_ns == st.st_mtime_ns and post.stat().st_size == st.st_size
    manifest, _ = run(inp, world["out"], world["cache"])
    assert manifest["cache"]["processed"] >= 1
    ref = full_build(inp, world["tmp"] / "ref")
    assert data_digest(world["out"]) == data_digest(ref)


def test_too_large_post_that_grows_shows_its_new_size(tmp_path: Path) -> None:
    """A post over --max-bytes is never read, so its batch's key cannot come from its content: it
    comes from its size, and a rebuild after it grew reports the size a clean build reports."""
    inp = tmp_path / "in"
    write_posts(inp, 40, seed=5)
    big = sorted(inp.rglob("*.md"))[7]
    big.write_bytes(big.read_bytes() + "。".encode() * 3000)  # over the 8 KiB limit below
    out, cache = tmp_path / "out", tmp_path / "cache"
    run(inp, out, cache, max_bytes=8192)
    big.write_bytes(big.read_bytes() + b"abc")
    run(inp, out, cache, max_bytes=8192)
    ref = tmp_path / "ref"
    run(inp, ref / "out", ref / "cache", max_bytes=8192, use_cache=False, workers=1)
    rejects = {r["source_path"]: r for r in pq.read_table(out / "rejects.parquet").to_pylist()}
    rel = str(big.relative_to(inp))
    assert rejects[rel]["size_bytes"] == big.stat().st_size
    assert data_digest(out) == data_digest(ref / "out")


def test_card_asked_for_after_a_no_card_build_is_written(tmp_path: Path) -> None:
    """Nothing changed in the input, but the published dataset has no card and this build wants
    one: it is not up to date."""
    inp = tmp_path / "in"
    write_posts(inp, 30, seed=9)
    out, cache = tmp_path / "out", tmp_path / "cache"
    run(inp, out, cache)  # write_card=False
    assert not (out / "README.md").exists()
    before = data_digest(out)
    manifest = build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1))
    assert not manifest.get("up_to_date") and manifest["cache"]["processed"] == 0
    assert (out / "README.md").is_file() and (out / "figures" / "articles_per_day.png").is_file()
    assert data_digest(out) == before
    assert validate_dataset(out) == []
    again = build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(cache), workers=1))
    assert again.get("up_to_date")
