"""The build cache: per-batch results (shards).

A shard is an Arrow IPC file of a batch's articles plus a JSON sidecar with its rejects and
counts, stored under the batch key (see pipeline.batches). The JSON is written last, through
a rename, so a shard without its JSON does not exist: a killed build never leaves a half shard.
Finding a batch's shard without reading its files is pipeline.build.BatchIndex's job.

Shards live in a folder per code version (`shards/<code fingerprint>/`), since results of other
code are never reused, and the store prunes itself after each build (`ShardStore.prune`): other
code versions' folders once no build has used them for OTHER_CODE_GRACE_S, and this version's
shards that the build did not use once they have gone unused for UNUSED_SHARD_DAYS.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import BuildError

# Another code version's folder is kept this long after a build last used it: a build of that
# code running at the same time (another checkout, CI) keeps its own folder fresh.
OTHER_CODE_GRACE_S = 3600
# A shard of this code version that a build did not use is kept this long after it was last used:
# another input built with the same cache (two outputs side by side share one) keeps its shards.
UNUSED_SHARD_DAYS = 7
# A shard's meta file time says when a build last used it; refreshed when older than this.
USED_MARK_EVERY_S = 86400
# Builds refresh their code folder's time at most this often (a long build outlives the grace otherwise).
TOUCH_EVERY_S = 60
_TMP_PREFIX = ".tmp-"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class PruneReport:
    """What ShardStore.prune removed."""

    shards: int = 0  # this code version's unused shards
    code_versions: int = 0  # other code versions' folders, whole
    bytes: int = 0


class ShardStore:
    """Shards on local disk, keyed by batch key, under the folder of one code version."""

    def __init__(self, root: str | Path, code: str) -> None:
        self.root = Path(root)
        self.code = code
        self.folder = self.root / "shards" / code
        self._touched = 0.0
        try:  # fail before any work, with a clear message, when the cache cannot be written
            self.root.mkdir(parents=True, exist_ok=True)
            writable = os.access(self.root, os.W_OK | os.X_OK)
        except OSError as exc:
            raise BuildError(f"cache folder is not writable: {self.root} ({exc.strerror}); "
                             "check --output or set --cache-dir") from exc
        if not writable:
            raise BuildError(f"cache folder is not writable: {self.root}; check --output or set --cache-dir")

    def _base(self, key: str) -> Path:
        return self.folder / key[:2] / key

    def mark_in_use(self) -> None:
        """Tell other builds' pruning that this code version is in use (its folder's time), at
        most every TOUCH_EVERY_S; call it now and then during a build."""
        now = time.time()
        if now - self._touched < TOUCH_EVERY_S:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.utime(self.folder)
        except OSError:
            return  # pruning by others is the only thing at stake
        self._touched = now

    def prune(self, used: Iterable[str], now: float | None = None) -> PruneReport:
        """Remove what no build is likely to reuse: other code versions' folders unused for
        OTHER_CODE_GRACE_S (and files of the store's layouts before folders per version), and
        this version's shards not in `used` that have gone UNUSED_SHARD_DAYS without a build
        using them (get_meta marks a shard used). Best effort: a file that cannot be removed
        stays, and a build never fails here."""
        now = time.time() if now is None else now
        report = PruneReport()
        used = set(used)
        try:
            entries = list(os.scandir(self.root / "shards"))
        except OSError:
            return report
        for entry in entries:
            if entry.name == self.code:
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < OTHER_CODE_GRACE_S:
                    continue
                report.bytes += _tree_bytes(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                report.code_versions += 1
            except OSError:
                continue
        oldest_kept = now - UNUSED_SHARD_DAYS * 86400
        for sub in _scandir(self.folder):
            for entry in _scandir(sub.path):
                name = entry.name
                try:
                    if name.startswith(_TMP_PREFIX):  # left by a killed build
                        if now - entry.stat().st_mtime >= OTHER_CODE_GRACE_S:
                            os.unlink(entry.path)
                        continue
                    key, _, suffix = name.rpartition(".")
                    if suffix == "arrow":  # its meta never written (a killed build): not a shard
                        if (not os.path.exists(entry.path[:-len("arrow")] + "json")
                                and now - entry.stat().st_mtime >= OTHER_CODE_GRACE_S):
                            report.bytes += entry.stat().st_size
                            os.unlink(entry.path)
                        continue
                    if suffix != "json" or key in used or entry.stat().st_mtime >= oldest_kept:
                        continue
                    arrow = self.arrow_path(key)
                    size = entry.stat().st_size + (arrow.stat().st_size if arrow.exists() else 0)
                    os.unlink(entry.path)  # the meta first: a shard without it does not exist
                    arrow.unlink(missing_ok=True)
                except OSError:
                    continue
                report.shards += 1
                report.bytes += size
        return report

    def get_meta(self, key: str) -> dict[str, Any] | None:
        """The shard's meta, or None when the shard is absent or damaged (its Arrow file
        missing or not of the size recorded when it was written): then it is recomputed."""
        path = self._base(key).with_suffix(".json")
        try:
            with open(path, encoding="utf-8") as fh:
                meta = json.load(fh)
                modified = os.fstat(fh.fileno()).st_mtime
            size = os.path.getsize(self.arrow_path(key))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("arrow_bytes", size) != size:
            return None
        now = time.time()
        if now - modified > USED_MARK_EVERY_S:  # marked used (for prune), not on every rebuild
            try:
                os.utime(path, (now, now))
            except OSError:
                pass
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


def _scandir(path: str | Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return [e for e in it if e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _tree_bytes(path: str) -> int:
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
