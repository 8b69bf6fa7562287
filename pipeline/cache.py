"""The build cache: per-batch results (shards) and a stat index of content hashes.

A shard is an Arrow IPC file of a batch's articles plus a JSON sidecar with its rejects and
counts, stored under the batch key (see pipeline.batches). The JSON is written last, through
a rename, so a shard without its JSON does not exist: a killed build never leaves a half shard.
The stat index remembers each local file's (size, mtime, inode) -> SHA-256, like git's index,
so an unchanged rebuild need not re-read every post to know it is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import BuildError


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ShardStore:
    """Shards on local disk, keyed by batch key."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:  # fail before any work, with a clear message, when the cache cannot be written
            self.root.mkdir(parents=True, exist_ok=True)
            writable = os.access(self.root, os.W_OK | os.X_OK)
        except OSError as exc:
            raise BuildError(f"cache folder is not writable: {self.root} ({exc.strerror}); "
                             "check --output or set --cache-dir") from exc
        if not writable:
            raise BuildError(f"cache folder is not writable: {self.root}; check --output or set --cache-dir")

    def _base(self, key: str) -> Path:
        return self.root / "shards" / key[:2] / key

    def get_meta(self, key: str) -> dict[str, Any] | None:
        """The shard's meta, or None when the shard is absent or damaged (its Arrow file
        missing or not of the size recorded when it was written): then it is recomputed."""
        try:
            with open(self._base(key).with_suffix(".json"), encoding="utf-8") as fh:
                meta = json.load(fh)
            size = os.path.getsize(self.arrow_path(key))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("arrow_bytes", size) != size:
            return None
        return meta

    def put(self, key: str, ipc: bytes, meta: dict[str, Any]) -> None:
        _atomic_write(self.arrow_path(key), ipc)
        _atomic_write(self._base(key).with_suffix(".json"),
                      json.dumps({**meta, "arrow_bytes": len(ipc)}, sort_keys=True).encode("ascii"))

    def arrow_path(self, key: str) -> Path:
        return self._base(key).with_suffix(".arrow")

    def open(self, key: str) -> pa.ipc.RecordBatchFileReader:
        return pa.ipc.open_file(pa.OSFile(str(self.arrow_path(key)), "rb"))

    def prune(self, keep: set[str]) -> int:
        """Delete shards not in `keep` (results of posts no longer in the input)."""
        removed = 0
        shard_dir = self.root / "shards"
        if not shard_dir.is_dir():
            return 0
        for sub in shard_dir.iterdir():
            for f in sub.iterdir():
                if f.name.startswith(".tmp-") or f.name.split(".")[0] not in keep:
                    f.unlink(missing_ok=True)
                    removed += f.suffix == ".json"
        return removed


# A file modified this recently may change again within the file system's timestamp
# granularity without its (size, mtime) changing ("racy git"): it is hashed, not indexed.
RACY_NS = 2_000_000_000


class StatIndex:
    """(size, mtime_ns, inode) -> content SHA-256 for the files of one input root."""

    def __init__(self, cache_root: str | Path, input_root: str) -> None:
        tag = hashlib.sha256(os.path.abspath(input_root).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.path = Path(cache_root) / f"stat-index-{tag}.json"
        self.entries: dict[str, list[Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as fh:
                entries = json.load(fh)
        except (OSError, ValueError):
            entries = {}
        if isinstance(entries, dict):
            self.entries = {k: v for k, v in entries.items() if isinstance(v, list) and len(v) >= 2}
        self.fresh: dict[str, list[Any]] = {}

    def lookup(self, rel: str, signature: tuple[int, ...]) -> str | None:
        entry = self.entries.get(rel)
        if entry is not None and tuple(entry[:-1]) == tuple(signature):
            self.fresh[rel] = entry
            return entry[-1]
        return None

    def record(self, rel: str, signature: tuple[int, ...], sha: str) -> None:
        if len(signature) > 1 and signature[1] >= time.time_ns() - RACY_NS:
            return  # racy: hash it again next time
        self.fresh[rel] = [*signature, sha]

    def save(self) -> None:
        """Keep only the files seen in this build."""
        _atomic_write(self.path, json.dumps(self.fresh).encode("ascii"))
