"""The build cache: per-batch results (shards).

A shard is an Arrow IPC file of a batch's articles plus a JSON sidecar with its rejects and
counts, stored under the batch key (see pipeline.batches). The JSON is written last, through
a rename, so a shard without its JSON does not exist: a killed build never leaves a half shard.
Finding a batch's shard without reading its files is pipeline.build.BatchIndex's job.
"""

from __future__ import annotations

import json
import os
import tempfile
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
        # read, not memory-mapped: a mapping keeps every page the merge touched resident until the
        # shard is done, and the merge has a shard open for each stretch of time it spans
        return pa.ipc.open_file(pa.OSFile(str(self.arrow_path(key)), "rb"))

    def read_columns(self, key: str, columns: list[str]) -> pa.Table:
        """Some columns of a shard, copied out of a memory map: only their pages are read, and
        no mapping outlives the call."""
        with pa.memory_map(str(self.arrow_path(key)), "r") as source:
            reader = pa.ipc.open_file(source)
            table = reader.read_all().select(columns)
            # concat_arrays copies even a single chunk, so nothing points into the mapping
            return pa.Table.from_arrays([pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], col.type)
                                         for col in table.columns], schema=table.schema)
