"""Group discovered posts into batches, and run one batch through the stages.

Batches are cut where a path's hash says so (content-defined chunking on the sorted path
list), so adding or removing a post changes only the batch around it; a batch's key is the
hash of its members' paths and content hashes plus the pipeline version and options, which
is what the result cache is keyed by.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.cache import ShardStore
from pipeline.discover import DEFAULT_MAX_BYTES, InputItem, read_item
from pipeline.errors import Reject
from pipeline.process import process_posts, reject_row
from pipeline.schema import PIPELINE_VERSION, SHARD_SCHEMA

# A batch ends after a post whose path hash has CHUNK_BITS low bits set (1 in 2**CHUNK_BITS), or at
# MAX_BATCH posts: about 520 posts on average over the corpus (42 batches). Each batch costs the
# driver and a worker fixed work (pickling, a shard file to write, open and map, its keys read);
# once the quick tree made posts cheap, that showed: against 230-post batches, builds of the corpus
# took 4-5 % less time and CPU (docs/performance.md). Two workers still get about 20 batches each.
CHUNK_BITS = 9
MAX_BATCH = 1024
# ... or once its posts' sizes add up to MAX_BATCH_BYTES: a worker holds a whole batch's posts, and
# what each stage makes of them, at once (process.process_posts), so this bounds a worker's memory
# whatever the posts' sizes (a post of unknown size counts as --max-bytes: held_bytes). The corpus's
# batches (about 2.6 MB each) never reach it.
MAX_BATCH_BYTES = 32 << 20
# Columns the merge needs to deduplicate and order rows (and the card to chart them). The merge
# reads only these columns' buffers from the memory-mapped shards, never their bulk.
KEY_COLUMNS = ["article_id", "published_at", "feed_date", "source_path", "content_sha256", "source", "section",
               "warnings"]
# Rows per record batch inside a shard: the merge reads shards this many rows at a time.
SHARD_CHUNK_ROWS = 64


@dataclass
class Batch:
    """A run of posts. `key` is a cheap identity (paths + stat signatures) used to find the
    batch's result again without reading its files; None when the input has no reliable
    signatures (fsspec URLs), in which case workers always read and hash."""

    key: str | None
    items: list[InputItem] = field(default_factory=list)


@dataclass(frozen=True)
class BatchSettings:
    """What a worker needs besides the batch: the size limit, and where shards are cached
    (None: return the shard bytes to the caller, e.g. from a remote Dask worker)."""

    max_bytes: int
    options_key: str = ""
    store_root: str | None = None
    use_cache: bool = True


def _is_boundary(source_path: str) -> bool:
    mask = (1 << CHUNK_BITS) - 1
    return zlib.crc32(source_path.encode("utf-8", "surrogatepass")) & mask == mask


def _error_key(item: InputItem) -> str:
    """An input that is a reject before being read: its reason and detail (a size, say) are its result."""
    return "error:" + ":".join(map(str, item.locator[1:]))


def item_signature_key(item: InputItem) -> str | None:
    """A cheap stand-in for the content: stat signature, zip CRC, or the hash when known."""
    if item.content_sha256:
        return item.content_sha256
    if item.locator[0] == "error":
        return _error_key(item)
    if item.signature:
        return "sig:" + ":".join(map(str, item.signature))
    return None


def item_content_key(item: InputItem) -> str:
    if item.content_sha256:
        return item.content_sha256
    if item.locator[0] == "error":
        return _error_key(item)
    if item.locator[0] == "zip" and item.signature:
        return "zipcrc:{}:{}".format(*item.signature)
    # not read (over --max-bytes by its size, or unreadable): its reject row shows the size
    return f"unread:{item.size}"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the pipeline's own code and data files: results cached by an older code
    version are never reused, even when PIPELINE_VERSION was not bumped."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(PIPELINE_VERSION.encode())
    for path in fingerprinted_files(root):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def fingerprinted_files(root: Path) -> list[Path]:
    """The files code_fingerprint hashes: sources (the compiled walk's .pyx too) and data."""
    return [path for path in sorted(root.rglob("*"))
            if path.suffix in (".py", ".pyx", ".txt", ".json") and "demo_posts" not in path.parts and path.is_file()]


def _hash_keys(pairs: list[tuple[str, str]], options_key: str) -> str:
    h = hashlib.sha256(f"{code_fingerprint()}\n{options_key}\n".encode())
    for path, key in pairs:
        h.update(path.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(key.encode())
        h.update(b"\n")
    return h.hexdigest()


def batch_key(items: list[InputItem], options_key: str) -> str:
    """The content key a batch's result is stored under: paths + content hashes + code + options."""
    return _hash_keys([(i.source_path, item_content_key(i)) for i in items], options_key)


def signature_key(items: list[InputItem], options_key: str) -> str | None:
    keys = [item_signature_key(i) for i in items]
    if any(k is None for k in keys):
        return None
    return "sig-" + _hash_keys([(i.source_path, k) for i, k in zip(items, keys, strict=True)], options_key)


def held_bytes(item: InputItem, max_bytes: int) -> int:
    """The bytes a worker may hold for `item`: its size; when no size was listed (an fsspec store
    may list none) the most a read takes, not nothing; none for an input rejected in discovery."""
    if item.locator[0] == "error":
        return 0
    return max_bytes if item.size is None else item.size


def make_batches(items: Iterable[InputItem], options_key: str,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Batch]:
    """Cut the stream of items into batches at content-defined boundaries (`max_bytes`: the
    build's --max-bytes, what a post of unknown size may take)."""
    current: list[InputItem] = []
    size = 0
    for item in items:
        current.append(item)
        size += held_bytes(item, max_bytes)
        if _is_boundary(item.source_path) or len(current) >= MAX_BATCH or size >= MAX_BATCH_BYTES:
            yield Batch(signature_key(current, options_key), current)
            current = []
            size = 0
    if current:
        yield Batch(signature_key(current, options_key), current)


def sort_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """Dataset row order: published_at (nulls last), then article_id, then source_path."""
    ts = record["published_at"]
    return (ts is None, ts or 0, record["article_id"], record["source_path"])


def records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Article dicts -> a table with exactly SHARD_SCHEMA (never inferred)."""
    # a Field's name is a property that makes a new str on every call: read once per column
    columns = [pa.array(list(map(itemgetter(name), records)), type=column.type)
               for name, column in zip(SHARD_SCHEMA.names, SHARD_SCHEMA, strict=True)]
    return pa.Table.from_arrays(columns, schema=SHARD_SCHEMA)


def use_system_allocator() -> None:
    """malloc returns freed memory to the OS promptly; mimalloc keeps it, and a long build's
    peak RSS then grows with the corpus."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


_LIBC = _libc()


# A worker gives its heap's free pages back to the OS once its resident size has grown this much
# since it last did.
TRIM_GROWTH_BYTES = 32 << 20


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_trimmed_at: int | None = None  # this process's resident size right after its last trim


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory() -> None:
    """Give the heap's free pages back to the OS (glibc) when this process has grown by
    TRIM_GROWTH_BYTES since it last did. Called after each batch: a worker's heap otherwise keeps
    the holes its parse trees and buffers leave, and its RSS creeps up with the number of posts
    processed. Not after every batch: the pages given back are faulted in again by the next
    batch, which cost a quarter of a worker's time (178k page faults on the corpus, 42k without)."""
    global _trimmed_at
    if _LIBC is None:
        return
    rss = _resident_bytes()
    if rss is not None and _trimmed_at is not None and rss < _trimmed_at + TRIM_GROWTH_BYTES:
        return
    _LIBC.malloc_trim(0)
    _trimmed_at = _resident_bytes()


# Blocks this large or larger are mapped on their own by glibc's malloc once the merge starts.
MMAP_THRESHOLD_BYTES = 8 << 20
# ... and free memory at the top of a heap (the driver's and each writer thread's) is given back to
# the OS only beyond this much. Setting the mmap threshold fixes this one too, at glibc's default of
# 128 KiB: each row group's buffers were then given back and faulted in again for the next one (49k
# page faults in the write phase against 10.5k, and 0.73-0.82 against 0.66-0.70 s of its CPU:
# scripts/profile_write.py). What it keeps is bounded by this, whatever the corpus's size.
TRIM_THRESHOLD_BYTES = 16 << 20


def fix_mmap_threshold() -> None:
    """Have glibc's malloc map every block of MMAP_THRESHOLD_BYTES or more on its own, so freeing
    it returns it to the OS. By default glibc raises that threshold (up to 32 MiB) after each such
    free, and the merge's large Arrow buffers then stayed in the heap once freed: the driver's peak
    grew with the corpus. Not lower: the writer threads' row-group buffers (a few MiB) would then
    be mapped and unmapped for every group, and page faults took a quarter of their CPU. Heap tops
    are kept up to TRIM_THRESHOLD_BYTES, for the same reason."""
    if _LIBC is not None:
        _LIBC.mallopt(-3, MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD; setting it turns the dynamic raise off
        _LIBC.mallopt(-1, TRIM_THRESHOLD_BYTES)  # M_TRIM_THRESHOLD


class _RefusePandas:
    """A meta-path finder under which `import pandas` fails."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("not needed by a build process")


def skip_pandas_probe() -> None:
    """Tell pyarrow, in a process that never gives it pandas objects, that pandas is absent.

    The first time pyarrow converts a Python list it imports pandas (about 0.25 s of CPU) to
    check whether the list is a pandas object. Build processes (the CLI and the local engine's
    workers) hand it only lists, so the probe is answered here without the import. Explicit
    pandas use still works: `Table.to_pandas()` imports pandas then. Not for Dask workers, which
    may run other people's tasks.
    """
    if "pandas" in sys.modules:
        return
    finder = _RefusePandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])  # the probe, answered "no pandas"
    except Exception:  # noqa: BLE001 - another pyarrow may react differently: then it imports later
        pass
    finally:
        sys.meta_path.remove(finder)


def process_batch(batch: Batch, settings: BatchSettings) -> tuple[bytes | None, dict[str, Any]]:
    """Read, hash and run every post of a batch through the stages.

    The shard (Arrow IPC file of the articles sorted by `sort_key`) goes to the shard store when
    `settings.store_root` is set — and is reused from there, without processing, when a shard for
    the same paths and contents exists — else its bytes are returned. Returns (bytes or None, meta);
    meta holds the content key, the signature key, the rejects and counts.
    """
    use_system_allocator()
    raws: list[bytes | None] = []
    read_rejects: dict[int, dict[str, Any]] = {}
    zips: dict[str, zipfile.ZipFile] = {}
    try:
        for n, item in enumerate(batch.items):
            try:
                raw = read_item(item, settings.max_bytes, zips)  # zips: each archive opened once per batch
            except Reject as rej:
                read_rejects[n] = reject_row(item.source_path, rej.reason, rej.detail, None, item.size)
                raws.append(None)
                continue
            if item.content_sha256 is None:
                item.content_sha256 = hashlib.sha256(raw).hexdigest()
            raws.append(raw)
    finally:
        for archive in zips.values():
            archive.close()
    content_key = batch_key(batch.items, settings.options_key)
    store = ShardStore(settings.store_root, code_fingerprint()) if settings.store_root else None
    if store is not None and settings.use_cache:
        cached = store.get_meta(content_key)
        if cached is not None:
            return None, {**cached, "signature_key": batch.key, "reused": True}

    results = iter(process_posts([(item.source_path, raw, item.content_sha256)
                                  for item, raw in zip(batch.items, raws, strict=True) if raw is not None]))
    records: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for n, raw in enumerate(raws):
        kind, row = next(results) if raw is not None else ("reject", read_rejects[n])
        (records if kind == "article" else rejects).append(row)
    records.sort(key=sort_key)
    table = records_to_table(records)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, SHARD_SCHEMA) as writer:
        writer.write_table(table, max_chunksize=SHARD_CHUNK_ROWS)
    ipc = sink.getvalue()
    meta = {"key": content_key, "inputs": len(batch.items), "articles": len(records), "rejects": rejects}
    shard = None
    if store is not None:
        store.put(content_key, ipc, meta)
    else:
        shard = ipc.to_pybytes()
    del ipc, sink, table, records, raws
    release_free_memory()
    return shard, {**meta, "signature_key": batch.key, "reused": False}
