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
from pathlib import Path
from typing import Any

import pyarrow as pa


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

    def _base(self, key: str) -> Path:
        return self.root / "shards" / key[:2] / key

    def get_meta(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self._base(key).with_suffix(".json"), encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            return None
        return meta if os.path.exists(self.arrow_path(key)) else None

    def put(self, key: str, ipc: bytes, meta: dict[str, Any]) -> None:
        _atomic_write(self.arrow_path(key), ipc)
        _atomic_write(self._base(key).with_suffix(".json"),
                      json.dumps(meta, sort_keys=True).encode("ascii"))

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


class StatIndex:
    """(size, mtime_ns, inode) -> content SHA-256 for the files of one input root."""

    def __init__(self, cache_root: str | Path, input_root: str) -> None:
        tag = hashlib.sha256(os.path.abspath(input_root).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.path = Path(cache_root) / f"stat-index-{tag}.json"
        self.entries: dict[str, list[Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as fh:
                self.entries = json.load(fh)
        except (OSError, ValueError):
            self.entries = {}
        self.fresh: dict[str, list[Any]] = {}

    def lookup(self, rel: str, signature: tuple[int, ...]) -> str | None:
        entry = self.entries.get(rel)
        if entry is not None and tuple(entry[:-1]) == tuple(signature):
            self.fresh[rel] = entry
            return entry[-1]
        return None

    def record(self, rel: str, signature: tuple[int, ...], sha: str) -> None:
        self.fresh[rel] = [*signature, sha]

    def save(self) -> None:
        """Keep only the files seen in this build."""
        _atomic_write(self.path, json.dumps(self.fresh).encode("ascii"))
