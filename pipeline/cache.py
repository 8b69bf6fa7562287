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
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import BuildError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no build locks, so the store never prunes
    fcntl = None  # type: ignore[assignment]

# Another code version's folder is kept this long after a build of it last started (a switch back
# to that version soon after finds its shards). Builds running now are protected by their locks.
OTHER_CODE_GRACE_S = 3600
# A shard of this code version that a build did not use is kept this long after it was last used:
# another input built with the same cache (two outputs side by side share one) keeps its shards.
UNUSED_SHARD_DAYS = 7
# A shard's meta file time says when a build last used it; refreshed when older than this.
USED_MARK_EVERY_S = 86400
_TMP_PREFIX = ".tmp-"
# What the store itself names: code version folders, shard files, and the folders of the layout
# before folders per version (shards/<key[:2]>/<key>.*). Anything else under shards/ is not ours.
_CODE_FOLDER_RE = re.compile(r"[0-9a-f]{16}")
_LEGACY_FOLDER_RE = re.compile(r"[0-9a-f]{2}")
_SHARD_FILE_RE = re.compile(r"[0-9a-f]{64}\.(?:arrow|json)|\.tmp-.*")


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

    shards: int = 0  # this code version's shards no build used for UNUSED_SHARD_DAYS
    leftovers: int = 0  # temporary files and meta-less Arrow files of killed builds
    code_versions: int = 0  # other code versions' folders, whole
    bytes: int = 0  # of what was removed


class ShardStore:
    """Shards on local disk, keyed by batch key, under the folder of one code version.

    A build holds its version's lock (`hold`, a shared flock on locks/<code>.lock) from before
    it reads the store until it ends (`release`): pruning by another build removes a version's
    folder only when it can lock that version exclusively, i.e. while no build of it runs, and
    removes unused shards of its own version only when no other build of that version runs."""

    def __init__(self, root: str | Path, code: str) -> None:
        self.root = Path(root)
        self.code = code
        self.folder = self.root / "shards" / code
        self._lock_fd: int | None = None
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

    def _lock_path(self, code: str) -> Path:
        # lock files stay (empty): removing one while a build waits on it would split the lock in two
        return self.root / "locks" / f"{code}.lock"

    def hold(self) -> None:
        """Take this code version's shared lock for the build, and mark the version used now (its
        folder's time, which OTHER_CODE_GRACE_S counts from). Waits only while another build
        prunes this version: removes its folder, or its unused shards. Processes forked while the
        lock is held (the local engine's workers) close their copy of it."""
        if fcntl is None or self._lock_fd is not None:
            return
        try:
            path = self._lock_path(self.code)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # no lock: prune() then leaves everything alone
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:  # a file system without flock: no lock, no pruning
            os.close(fd)
            return
        self._lock_fd = fd
        _HOLDING.add(self)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.utime(self.folder)
        except OSError:
            pass

    def release(self) -> None:
        """Let go of the version's lock (the end of the build). In a forked child this closes only
        the child's copy: the lock stays with the parent, which still has its own."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        _HOLDING.discard(self)

    def prune(self, used: Iterable[str], now: float | None = None) -> PruneReport:
        """Remove what no build is likely to reuse, with the version's lock held (`hold`):
        other code versions' folders that no build has started in for OTHER_CODE_GRACE_S and no
        build runs now (and folders of the layout before folders per version, which hold only
        shard files); then, if no other build of this version runs, this version's shards not
        in `used` that no build has used for UNUSED_SHARD_DAYS (get_meta marks a shard used), and
        leftovers of killed builds older than OTHER_CODE_GRACE_S. Only names the store gives are
        touched. Best effort: what cannot be removed stays, and a build never fails here."""
        report = PruneReport()
        if fcntl is None or self._lock_fd is None:
            return report
        now = time.time() if now is None else now
        for entry in _scandir(self.root / "shards"):
            name = entry.name
            if name == self.code or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < OTHER_CODE_GRACE_S:
                    continue
            except OSError:
                continue
            if _CODE_FOLDER_RE.fullmatch(name):
                lock = self._try_exclusive(name)
                if lock is None:  # a build of that version runs
                    continue
                try:
                    self._remove_folder(entry.path, report)
                finally:
                    os.close(lock)
            elif _LEGACY_FOLDER_RE.fullmatch(name) and all(
                    _SHARD_FILE_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False)
                    for e in _scandir(entry.path, every=True)):
                self._remove_folder(entry.path, report)
        # Converting the shared lock to exclusive fails while another build of this version holds
        # it. Either way the lock is shared again afterwards: Linux drops the old lock before
        # trying the new one, and an exclusive lock kept to the end of the build would hold up
        # every build of this version starting meanwhile (the publish may be a slow upload).
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            return report
        try:
            self._prune_own(set(used), now, report)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        return report

    def _try_exclusive(self, code: str) -> int | None:
        try:
            fd = os.open(self._lock_path(code), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def _remove_folder(path: str, report: PruneReport) -> None:
        before = _tree_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        gone = not os.path.lexists(path)
        report.bytes += before - (0 if gone else _tree_bytes(path))
        report.code_versions += gone

    def _prune_own(self, used: set[str], now: float, report: PruneReport) -> None:
        oldest_kept = now - UNUSED_SHARD_DAYS * 86400
        for sub in _scandir(self.folder):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(sub.path):
                name = entry.name
                try:
                    if not entry.is_file(follow_symlinks=False) or not _SHARD_FILE_RE.fullmatch(name):
                        continue
                    info = entry.stat(follow_symlinks=False)
                    key, _, suffix = name.rpartition(".")
                    if name.startswith(_TMP_PREFIX) or (suffix == "arrow" and not os.path.exists(
                            entry.path[:-len("arrow")] + "json")):
                        # a killed build's temporary file, or an Arrow file whose meta never came
                        if now - info.st_mtime >= OTHER_CODE_GRACE_S:
                            os.unlink(entry.path)
                            report.leftovers += 1
                            report.bytes += info.st_size
                        continue
                    if suffix != "json" or key in used or info.st_mtime >= oldest_kept:
                        continue
                    os.unlink(entry.path)  # the meta first: a shard without it does not exist
                    report.shards += 1
                    report.bytes += info.st_size
                    arrow = self.arrow_path(key)
                    size = arrow.stat().st_size
                    arrow.unlink()
                    report.bytes += size
                except OSError:
                    continue

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


# Stores holding their version's lock in this process. A forked child (a worker) closes its
# copies, so that the lock ends with the build even when a killed driver leaves workers behind.
_HOLDING: weakref.WeakSet[ShardStore] = weakref.WeakSet()


def _drop_inherited_locks() -> None:
    for store in list(_HOLDING):
        store.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


def _scandir(path: str | Path, every: bool = False) -> list[os.DirEntry[str]]:
    """The entries of a folder (none when it cannot be read); symbolic links left out unless
    `every` (a legacy folder holding a link is not all shard files)."""
    try:
        with os.scandir(path) as it:
            return [e for e in it if every or not e.is_symlink()]
    except OSError:
        return []


def _tree_bytes(path: str) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total
