"""The local engine: the number of worker processes changes neither the batches nor a byte of the
output, for a folder, a .zip and a .tar.gz of the demo posts."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

import pipeline.batches as batches_mod
from pipeline.batches import make_batches
from pipeline.build import BuildOptions, build
from pipeline.discover import InputItem, discover

REPO = Path(__file__).resolve().parent.parent
DEMO_POSTS = REPO / "pipeline" / "demo_posts"
OUTPUT_FILES = ("rejects.parquet", "duplicates.parquet")


def output_bytes(out: Path) -> dict[str, bytes]:
    """Every Parquet file of a built dataset, by relative path."""
    files = sorted((out / "articles").glob("*.parquet"))
    assert files, f"no article files in {out}"
    result = {f"articles/{p.name}": p.read_bytes() for p in files}
    for name in OUTPUT_FILES:
        result[name] = (out / name).read_bytes()
    return result


def shard_keys(cache: Path) -> set[str]:
    return {p.stem for p in (cache / "shards").rglob("*.arrow")}


def build_with(src: str, root: Path, workers: int, engine: str = "local", **kw) -> tuple[Path, dict]:
    out, cache = root / "out", root / "cache"
    manifest = build(BuildOptions(input=src, output=str(out), workers=workers, engine=engine,
                                  cache_dir=str(cache), write_card=False, **kw))
    return out, manifest


@pytest.fixture()
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """About 4 posts per batch, so the 37 demo posts make several batches to spread over workers."""
    monkeypatch.setattr(batches_mod, "CHUNK_BITS", 2)


@pytest.fixture(scope="module")
def demo_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("archives")
    posts = sorted(DEMO_POSTS.rglob("*.md"))
    zpath = root / "demo.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in posts:
            zf.write(p, p.relative_to(DEMO_POSTS).as_posix())
    tpath = root / "demo.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for p in posts:
            tf.add(p, p.relative_to(DEMO_POSTS).as_posix())
    return {"dir": DEMO_POSTS, "zip": zpath, "tar": tpath}


@pytest.mark.parametrize("kind", ["dir", "zip", "tar"])
def test_worker_count_does_not_change_output(kind: str, demo_archives: dict[str, Path], tmp_path: Path,
                                             small_batches: None) -> None:
    src = str(demo_archives[kind])
    results = {}
    for workers in (1, 2, 3):
        out, manifest = build_with(src, tmp_path / f"w{workers}", workers)
        assert manifest["counts"]["inputs"] == 37
        results[workers] = (output_bytes(out), manifest["input_fingerprint"], shard_keys(tmp_path / f"w{workers}" / "cache"))
    files1, fingerprint1, shards1 = results[1]
    assert len(shards1) > 3, "the test needs several batches"
    for workers in (2, 3):
        files, fingerprint, shards = results[workers]
        assert fingerprint == fingerprint1, f"batch boundaries changed with workers={workers}"
        assert shards == shards1
        assert files.keys() == files1.keys()
        for name in files1:
            assert files[name] == files1[name], f"{kind}: {name} differs between workers=1 and workers={workers}"


def test_archives_equal_folder(demo_archives: dict[str, Path], tmp_path: Path) -> None:
    """A zip or tar.gz of the folder gives the same dataset as the folder itself."""
    built = {kind: output_bytes(build_with(str(path), tmp_path / kind, 2)[0]) for kind, path in demo_archives.items()}
    for kind in ("zip", "tar"):
        assert built[kind] == built["dir"], f"{kind} build differs from the folder build"


def test_batches_independent_of_workers(small_batches: None) -> None:
    """Batching happens before any engine: cut only by the paths, the same for every run."""
    first = [(b.key, [i.source_path for i in b.items]) for b in make_batches(discover(str(DEMO_POSTS)), "k")]
    again = [(b.key, [i.source_path for i in b.items]) for b in make_batches(discover(str(DEMO_POSTS)), "k")]
    assert first == again
    assert sum(len(paths) for _, paths in first) == 37
    # Removing one post changes only the batch that held it.
    items = list(discover(str(DEMO_POSTS)))
    dropped = [b.key for b in make_batches([i for n, i in enumerate(items) if n != 10], "k")]
    assert len(set(dropped) ^ {k for k, _ in first}) <= 3  # at most: two old batches merge into one


def test_batches_cut_by_size() -> None:
    """Large posts make smaller batches: a worker holds a batch at once, so its bytes are capped."""
    big = batches_mod.MAX_BATCH_BYTES // 3 + 1  # three of these pass the cap
    items = [InputItem(f"p{n:03d}.md", ("file", f"/nowhere/p{n:03d}.md"), size=big) for n in range(10)]
    cut = [len(b.items) for b in make_batches(items, "k")]
    assert sum(cut) == 10
    assert max(cut) <= 3
    assert all(sum(i.size for i in b.items) < batches_mod.MAX_BATCH_BYTES + big for b in make_batches(items, "k"))


def test_batches_cut_by_size_when_sizes_are_unknown() -> None:
    """A post whose store lists no size (fsspec) may be up to --max-bytes: it counts as that much,
    not as nothing (1,024 posts of 8 MiB would be an 8 GiB batch). A reject made in discovery, never
    read, counts nothing."""
    limit = batches_mod.MAX_BATCH_BYTES // 4
    items = [InputItem(f"p{n:03d}.md", ("fsspec", f"memory://in/p{n:03d}.md")) for n in range(40)]
    cut = [len(b.items) for b in make_batches(items, "k", max_bytes=limit)]
    assert sum(cut) == 40 and max(cut) <= 4
    unread = [InputItem(f"e{n:03d}.md", ("error", "unreadable", "x")) for n in range(40)]
    assert [len(b.items) for b in make_batches(unread, "k", max_bytes=limit)] == \
        [len(b.items) for b in make_batches(unread, "k", max_bytes=1 << 40)] == [40]


def test_manifest_records_engine(tmp_path: Path) -> None:
    _, manifest = build_with(str(DEMO_POSTS), tmp_path, 2)
    assert manifest["options"]["engine"] == "local"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))["counts"]["inputs"] == 37


def test_merge_malloc_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the merge the driver fixes both glibc thresholds: large blocks mapped on their own (freed
    merge buffers leave), and heap tops kept up to TRIM_THRESHOLD_BYTES (fixing the first left the
    second at 128 KiB: the writer threads' buffers were given back and faulted in for every group)."""
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(batches_mod, "_LIBC", FakeLibc())
    batches_mod.fix_mmap_threshold()
    assert dict(calls) == {-3: batches_mod.MMAP_THRESHOLD_BYTES, -1: batches_mod.TRIM_THRESHOLD_BYTES}
    assert batches_mod.TRIM_THRESHOLD_BYTES >= batches_mod.MMAP_THRESHOLD_BYTES  # a freed block below the
    # mmap threshold can stay in the heap for the next row group


def test_heap_trimmed_only_after_growth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers give free heap pages back once their RSS has grown by TRIM_GROWTH_BYTES since the
    last trim, not after every batch (the pages would only be faulted in again)."""
    trims: list[int] = []
    rss = {"now": 100 << 20}

    class FakeLibc:
        def malloc_trim(self, pad: int) -> int:
            trims.append(pad)
            rss["now"] -= 5 << 20  # a trim gives some pages back
            return 1

    monkeypatch.setattr(batches_mod, "_LIBC", FakeLibc())
    monkeypatch.setattr(batches_mod, "_resident_bytes", lambda: rss["now"])
    monkeypatch.setattr(batches_mod, "_trimmed_at", None)
    batches_mod.release_free_memory()  # the first batch sets the baseline
    assert len(trims) == 1 and batches_mod._trimmed_at == 95 << 20
    rss["now"] += batches_mod.TRIM_GROWTH_BYTES - 1
    batches_mod.release_free_memory()
    assert len(trims) == 1
    rss["now"] += 1
    batches_mod.release_free_memory()
    assert len(trims) == 2 and batches_mod._trimmed_at == rss["now"]
    monkeypatch.setattr(batches_mod, "_resident_bytes", lambda: None)  # no /proc: always trim
    batches_mod.release_free_memory()
    assert len(trims) == 3


def test_code_fingerprint_covers_the_compiled_walk() -> None:
    """Cached shards are keyed by the code: the compiled walk's source is part of it."""
    root = Path(batches_mod.__file__).resolve().parent
    names = {p.relative_to(root).as_posix() for p in batches_mod.fingerprinted_files(root)}
    assert {"_walk.pyx", "clean.py", "html_kinds.py", "cna/credits.py", "data/places.txt"} <= names
    assert not any(n.startswith("demo_posts/") or n.endswith((".so", ".c")) for n in names)


def test_workers_collect_garbage_per_batch_not_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local workers run without automatic cyclic GC (its passes cost about 8 % of their CPU) and
    end every batch with a young-generation collection, which frees the cycles a batch makes."""
    import gc

    import pipeline.engines.local as local_mod
    from pipeline.batches import Batch, BatchSettings

    def fake_process_batch(batch: Batch, settings: BatchSettings) -> tuple[None, dict]:
        young_at_start = gc.get_count()[0]
        for _ in range(2000):  # garbage only a cyclic collection frees
            cycle: list = []
            cycle.append(cycle)
        return None, {"gc_enabled": gc.isenabled(), "young_at_start": young_at_start, "key": batch.key}

    monkeypatch.setattr(local_mod, "process_batch", fake_process_batch)  # forked workers inherit it
    batches = [Batch(str(n)) for n in range(6)]  # 6 batches, 2 workers: some worker runs several
    results = [meta for _shard, meta in local_mod.run_local(batches, BatchSettings(max_bytes=1), workers=2)]
    assert sorted(meta["key"] for meta in results) == [str(n) for n in range(6)]
    assert all(meta["gc_enabled"] is False for meta in results)
    # the 2,000 cycles of a worker's previous batch were collected when it ended
    assert all(meta["young_at_start"] < 2000 for meta in results), results
    assert gc.isenabled()  # the driver keeps its own collector
