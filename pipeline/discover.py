"""Discover stage (a reader at the edge): find every `*.md` post under an input and read its bytes.

Inputs: a local folder (any depth), a `.zip` or `.tar.gz`/`.tgz` of one (read in place, never
unpacked to disk), a single `.md` file, or an fsspec URL of a folder (`file://`, `memory://`, `s3://`…).
Items are yielded in a deterministic order; anything that is not a readable regular file is still
yielded, with an error locator, so it ends as a reject instead of vanishing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.errors import BuildError, Reject

POST_SUFFIX = ".md"


@dataclass
class InputItem:
    """One discovered post. `locator` says how a worker reads it:
    ('file', path) | ('zip', archive, member) | ('bytes', data) | ('fsspec', url) | ('error', reason, detail).
    `signature` is a cheap change detector (size, mtime, inode) for local files, else None."""

    source_path: str
    locator: tuple[Any, ...]
    size: int | None = None
    signature: tuple[int, ...] | None = None
    content_sha256: str | None = None


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def input_kind(path: str) -> str:
    lower = path.lower()
    if is_url(path):
        return "fsspec"
    if path.startswith("file://"):
        path = path[len("file://"):]
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    if os.path.isdir(path):
        return "dir"
    if os.path.isfile(path) and lower.endswith(POST_SUFFIX):
        return "file"
    raise BuildError(f"input not found or not a folder, .zip, .tar.gz or .md file: {path}")


def discover(path: str) -> Iterator[InputItem]:
    """Every post under `path`, in a stable order. Raises BuildError when the input is unusable."""
    return discover_counted(path)[1]


def discover_counted(path: str, count: bool = True) -> tuple[int | None, Iterator[InputItem]]:
    """(number of posts when known up front, the posts). Items are made lazily, so a build
    holds only those in flight, not one object per post of the whole archive. `count=False`
    skips the counting walk of a folder (only a progress bar needs the number)."""
    kind = input_kind(path)
    if path.startswith("file://"):
        path = path[len("file://"):]
    if kind == "dir":
        if not os.access(path, os.R_OK | os.X_OK):
            raise BuildError(f"input folder is not readable: {path}")
        # a first walk counts (for the progress bar) by the same rule, holding nothing
        total = sum(1 for _ in _walk_sorted(path, "")) if count else None
        return total, (_local_item(rel, os.path.join(path, rel)) for rel in _walk_sorted(path, ""))
    return None, _discover_other(kind, path)


def _discover_other(kind: str, path: str) -> Iterator[InputItem]:
    if kind == "file":
        yield _local_item(os.path.basename(path), path)
    elif kind == "zip":
        yield from _discover_zip(path)
    elif kind == "tar":
        yield from _discover_tar(path)
    else:
        yield from _discover_fsspec(path)


def printable_path(rel: str) -> str:
    """File names are bytes on Linux: undecodable ones are shown with U+FFFD, not lost."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _local_item(rel: str, full: str) -> InputItem:
    rel = printable_path(rel)
    try:
        st = os.stat(full)  # follows symlinks: a link to a post is a post
    except FileNotFoundError:
        return InputItem(rel, ("error", "unreadable", "broken symlink or vanished file"))
    except OSError as exc:
        return InputItem(rel, ("error", "unreadable", f"cannot stat: {exc.strerror}"))
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return InputItem(rel, ("error", "not_a_file", f"{kind} named *.md"))
    return InputItem(rel, ("file", full), st.st_size, (st.st_size, st.st_mtime_ns, st.st_ino))


def _walk_sorted(root: str, rel_dir: str) -> Iterator[str]:
    """Relative paths ('/'-separated) of every *.md entry under root/rel_dir, in the order a sort
    of all the paths would give, one folder listing in memory at a time (not every path of the
    archive). A folder sorts by its name + "/" (its paths' prefix); a folder named *.md is
    itself an entry too (reported as not a file), just before anything inside it. Symbolic
    links to folders are entries, never descended into."""
    try:
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            entries = list(it)
    except OSError:
        return  # unreadable folder: skipped, as os.walk does
    keyed: list[tuple[str, bool, str]] = []  # (sort key, descend?, name)
    for entry in entries:
        name = entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if name.endswith(POST_SUFFIX):
            keyed.append((name, False, name))
        if is_dir and not entry.is_symlink():
            keyed.append((name + "/", True, name))
    keyed.sort()
    for _key, descend, name in keyed:
        if descend:
            yield from _walk_sorted(root, rel_dir + name + "/")
        else:
            yield rel_dir + name


def _discover_zip(path: str) -> Iterator[InputItem]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot open zip archive {path}: {exc}") from exc
    with archive:
        infos = sorted(archive.infolist(), key=lambda i: i.filename)
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            if name.rstrip("/").endswith(POST_SUFFIX):
                yield InputItem(name.rstrip("/"), ("error", "not_a_file", "a folder named *.md in the archive"))
            continue
        if name.endswith(POST_SUFFIX):
            yield InputItem(name, ("zip", os.path.abspath(path), name), info.file_size,
                            (info.file_size, info.CRC))


def _discover_tar(path: str) -> Iterator[InputItem]:
    """Streams the archive once: members are read here and shipped as bytes."""
    try:
        archive = tarfile.open(path, mode="r|*")
    except (OSError, tarfile.TarError) as exc:
        raise BuildError(f"cannot open tar archive {path}: {exc}") from exc
    with archive:
        try:
            for member in archive:
                name = member.name
                if not name.endswith(POST_SUFFIX):
                    continue
                if member.isdir():
                    yield InputItem(name, ("error", "not_a_file", "a folder named *.md in the archive"))
                elif not member.isfile():
                    yield InputItem(name, ("error", "not_a_file", "a link or special file in the archive"))
                else:
                    fh = archive.extractfile(member)
                    data = fh.read() if fh is not None else b""
                    yield InputItem(name, ("bytes", data), len(data), None, hashlib.sha256(data).hexdigest())
        except tarfile.TarError as exc:
            raise BuildError(f"tar archive {path} is corrupt: {exc}") from exc


def _discover_fsspec(url: str) -> Iterator[InputItem]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        raise BuildError(f"input not found: {url}")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    root = root.rstrip("/")
    entries = fs.find(root, withdirs=True, detail=True)
    for full in sorted(entries):
        info = entries[full]
        if not full.endswith(POST_SUFFIX):
            continue
        rel = full[len(root):].lstrip("/")
        if info.get("type") == "directory":
            yield InputItem(rel, ("error", "not_a_file", "a folder named *.md"))
        else:
            yield InputItem(rel, ("fsspec", f"{protocol}://{full}"), info.get("size"))


def read_capped(read: Callable[[int], bytes], max_bytes: int, size_hint: int | None) -> bytes:
    """Up to max_bytes + 1 bytes through `read(n)` (one more than the limit shows it was exceeded).
    Reading with the expected size avoids allocating (and page-faulting) a max_bytes buffer per
    post; a file that changed since discovery, or a short read, is read on to its end or the limit."""
    limit = max_bytes + 1
    want = limit if size_hint is None or size_hint >= max_bytes else size_hint + 1
    data = read(want)
    if len(data) == size_hint:  # the size discovery saw, and nothing after it: the whole file
        return data
    parts, got = [data], len(data)
    while got < limit:
        chunk = read(limit - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_file(path: str, max_bytes: int, size_hint: int | None) -> bytes:
    """A local file through its raw descriptor: open, read, close are three system calls where
    Python's open() adds fstat, lseek, ioctl and a read to find the end (over a corpus, more
    than the reading costs)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return read_capped(functools.partial(os.read, fd), max_bytes, size_hint)
    finally:
        os.close(fd)


def read_item(item: InputItem, max_bytes: int) -> bytes:
    """The raw bytes of a discovered post. Raises Reject (too_large, unreadable, not_a_file)."""
    loc = item.locator
    kind = loc[0]
    if kind == "error":
        raise Reject(loc[1], loc[2])
    if item.size is not None and item.size > max_bytes:
        raise Reject("too_large", f"{item.size} bytes > limit {max_bytes} (--max-bytes)")
    try:
        if kind == "bytes":
            data = loc[1]
        elif kind == "file":
            data = read_file(loc[1], max_bytes, item.size)
        elif kind == "zip":
            with zipfile.ZipFile(loc[1]) as archive, archive.open(loc[2]) as fh:
                data = read_capped(fh.read, max_bytes, item.size)
        elif kind == "fsspec":
            import fsspec

            with fsspec.open(loc[1], "rb") as fh:
                data = fh.read(max_bytes + 1)
        else:
            raise Reject("unreadable", f"unknown locator {kind!r}")
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise Reject("unreadable", f"{type(exc).__name__}: {exc}") from exc
    if len(data) > max_bytes:
        raise Reject("too_large", f"more than {max_bytes} bytes (--max-bytes)")
    return data
