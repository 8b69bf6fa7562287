"""Discover stage (a reader at the edge): find every `*.md` post under an input and read its bytes.

Inputs: a local folder (any depth), a `.zip` or `.tar.gz`/`.tgz` of one (read in place, never
unpacked to disk), a single `.md` file, or an fsspec URL of a folder (`file://`, `memory://`, `s3://`…).
Items are yielded in a deterministic order; anything that is not a readable regular file is still
yielded, with an error locator, so it ends as a reject instead of vanishing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from pipeline.errors import BuildError, Reject

POST_SUFFIX = ".md"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # --max-bytes when not given
# The largest --max-bytes: beyond any post, and within what one read may ask for (max_bytes + 1).
LARGEST_MAX_BYTES = 1 << 40


def max_bytes_problem(max_bytes: int) -> str | None:
    """Why `max_bytes` cannot be a size limit (0 would reject every post), or None."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= LARGEST_MAX_BYTES:
        return f"must be a whole number of bytes from 1 to 1 TiB, not {max_bytes!r}"
    return None

# What reading one post may raise that means "this post cannot be read" (reject `unreadable`), for
# every reader: I/O errors, a file or archive that changed since discovery (IndexError: the entry is
# gone), and a corrupt, truncated, encrypted (RuntimeError) or oddly compressed (NotImplementedError)
# zip member, or one whose local header holds a name flagged UTF-8 that is not (UnicodeDecodeError).
UNREADABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError, EOFError, IndexError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError,
    UnicodeDecodeError)
# What a corrupt or truncated tar or gzip stream may raise: the whole archive is unusable (BuildError).
_TAR_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


@dataclass
class InputItem:
    """One discovered post. `locator` says how a worker reads it: ('file', path) |
    ('zip', archive, member name, index in infolist()) | ('bytes', data) | ('fsspec', url) |
    ('error', reason, detail).
    `signature` is a cheap change detector (size, mtime, ctime, inode) for local files, else None."""

    source_path: str
    locator: tuple[Any, ...]
    size: int | None = None
    signature: tuple[int, ...] | None = None
    content_sha256: str | None = None


def is_url(path: str) -> bool:
    """A remote location (fsspec URL); a file:// URL is a local path."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    """A local path given as itself or as a file:// URL, without the scheme."""
    return path.removeprefix("file://")


def input_kind(path: str) -> str:
    lower = path.lower()
    if is_url(path):
        return "fsspec"
    path = local_path(path)
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    if os.path.isdir(path):
        return "dir"
    if os.path.isfile(path) and lower.endswith(POST_SUFFIX):
        return "file"
    raise BuildError(f"input not found or not a folder, .zip, .tar.gz or .md file: {path}")


def discover(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[InputItem]:
    """Every post under `path`, in a stable order. Raises BuildError when the input is unusable."""
    return discover_counted(path, max_bytes=max_bytes)[1]


def discover_counted(path: str, count: bool = True,
                     max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[int | None, Iterator[InputItem]]:
    """(number of posts when known up front, the posts). Items are made lazily, so a build
    holds only those in flight, not one object per post of the whole archive. `count=False`
    skips the counting walk of a folder (only a progress bar needs the number). `max_bytes` is
    the build's size limit: tar members, read here, are read no further than it."""
    kind = input_kind(path)
    path = local_path(path)
    if kind == "dir":
        if not os.access(path, os.R_OK | os.X_OK):
            raise BuildError(f"input folder is not readable: {path}")
        # a first walk counts (for the progress bar) by the same rule, holding nothing
        total = sum(1 for _ in _walk_sorted(path, "")) if count else None
        return total, (_folder_item(path, rel, error) for rel, error in _walk_sorted(path, ""))
    return None, _discover_other(kind, path, max_bytes)


def _discover_other(kind: str, path: str, max_bytes: int) -> Iterator[InputItem]:
    if kind == "file":
        yield _local_item(os.path.basename(path), path)
    elif kind == "zip":
        yield from _discover_zip(path)
    elif kind == "tar":
        yield from _discover_tar(path, max_bytes)
    else:
        yield from _discover_fsspec(path)


def printable_path(rel: str) -> str:
    """File names are bytes on Linux (Python holds undecodable bytes as lone surrogates, which no
    UTF-8 text can carry). Such a name shows each undecodable byte as `\\xNN` and its backslashes
    doubled, so no two such names share a path; a decodable name is left as it is."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        escaped = rel.replace("\\", "\\\\").encode("utf-8", "surrogateescape")
        return escaped.decode("utf-8", "backslashreplace")
    return rel


def _folder_item(root: str, rel: str, listing_error: str | None) -> InputItem:
    if listing_error is not None:
        return InputItem(printable_path(rel), ("error", "unreadable", listing_error))
    return _local_item(rel, os.path.join(root, rel))


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
    # ctime too: a rewrite that keeps the size and restores the mtime (`touch -r`) still changes it
    return InputItem(rel, ("file", full), st.st_size, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))


def _walk_sorted(root: str, rel_dir: str) -> Iterator[tuple[str, str | None]]:
    """(relative path ('/'-separated), None) of every *.md entry under root/rel_dir, in the order a
    sort of all the paths would give, one folder listing in memory at a time (not every path of the
    archive). A folder sorts by its name + "/" (its paths' prefix); a folder named *.md is
    itself an entry too (reported as not a file), just before anything inside it. Symbolic
    links to folders are entries, never descended into. A subfolder that cannot be listed is
    (its path + "/", why): its posts cannot be named, so it is accounted for as one reject."""
    try:
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            entries = list(it)
    except OSError as exc:
        if not rel_dir:
            raise BuildError(f"input folder is not readable: {root}") from exc
        yield rel_dir, f"the folder could not be listed: {exc.strerror or exc}"
        return
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
            yield rel_dir + name, None


def _discover_zip(path: str) -> Iterator[InputItem]:
    try:
        archive = zipfile.ZipFile(path)
    # a damaged central directory may also claim an unknown zip version or hold a name flagged UTF-8 that is not
    except (OSError, zipfile.BadZipFile, NotImplementedError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot open zip archive {path}: {exc}") from exc
    with archive:
        # by index, not name: an archive may hold two entries of one name (sorted() keeps their order)
        infos = sorted(enumerate(archive.infolist()), key=lambda pair: pair[1].filename)
    entry_path = _EntryPaths()
    for index, info in infos:
        name = info.filename
        if name.endswith("/"):
            if name.rstrip("/").endswith(POST_SUFFIX):
                yield InputItem(entry_path(name.rstrip("/")), ("error", "not_a_file", "a folder named *.md in the archive"))
            continue
        if name.endswith(POST_SUFFIX):
            yield InputItem(entry_path(name), ("zip", os.path.abspath(path), name, index), info.file_size,
                            (info.file_size, info.CRC))


class _EntryPaths:
    """source_path of each archive entry, in archive order: its name, and for a name seen before
    "name#2", "name#3"… An archive may hold several entries of one name (appended tars, zips
    written twice), and each input needs its own path; no entry's own name ends in "#N"."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        n = self.seen[name] = self.seen.get(name, 0) + 1
        return name if n == 1 else f"{name}#{n}"


class _EndTarInfo(tarfile.TarInfo):
    """Records on its archive the header error that ended it: tarfile ends its iteration silently on
    an empty, truncated or invalid header after the first, as on the zero end-of-archive block."""

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as exc:
            if isinstance(archive, _CheckedTarFile):
                archive.end = exc
            raise


class _CheckedTarFile(tarfile.TarFile):
    tarinfo = _EndTarInfo
    end: tarfile.HeaderError | None = None  # why iteration stopped; see UNTERMINATED_TAR


# An archive may end with a zero block (EOFHeaderError), or (as GNU tar accepts) with no more bytes
# where the next header would start (EmptyHeaderError). tarfile reads that header only once the
# member before it is whole (its data and padding, else "unexpected end of data"), so neither is a
# cut inside a header or a member's data. The second is also what an archive cut exactly between two
# members looks like: its members are read, and one `unreadable` row, named after the archive, says
# the rest may be missing.
UNTERMINATED_TAR = ("the archive stops after a whole member without its end-of-archive blocks: "
                    "written so, or cut short there, in which case the posts after that member are missing")


def _discover_tar(path: str, max_bytes: int) -> Iterator[InputItem]:
    """Streams the archive once: members are read here and shipped as bytes. A corrupt or truncated
    archive fails the build (BuildError): the posts after the damage cannot be named."""
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise BuildError(f"cannot open tar archive {path}: {exc}") from exc
    with raw:
        try:
            yield from _tar_items(raw, max_bytes, os.path.basename(path))
        except _TAR_ERRORS as exc:
            raise BuildError(f"tar archive {path} is corrupt or truncated: {exc}") from exc


def _tar_items(raw: IO[bytes], max_bytes: int, archive_name: str) -> Iterator[InputItem]:
    # gzip through the gzip module: tarfile's own stream decompresses each 10 KiB read whole (10 MB
    # from 10 KiB of zeros) and takes a cut inside the gzip header for a TypeError
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
    with stream, _CheckedTarFile.open(fileobj=stream, mode="r|" if gzipped else "r|*") as archive:
        entry_path = _EntryPaths()
        for member in archive:
            name = printable_path(member.name)
            if not name.endswith(POST_SUFFIX):
                continue
            name = entry_path(name)
            if member.isdir():
                yield InputItem(name, ("error", "not_a_file", "a folder named *.md in the archive"))
            elif not member.isfile():
                yield InputItem(name, ("error", "not_a_file", "a link or special file in the archive"))
            elif member.size > max_bytes:  # rejected by its header's size: its bytes are skipped, never held
                yield InputItem(name, ("error", "too_large", _too_large(member.size, max_bytes)), member.size)
            else:
                fh = archive.extractfile(member)
                data = read_capped(fh.read, max_bytes, member.size) if fh is not None else b""
                yield InputItem(name, ("bytes", data), len(data), None, hashlib.sha256(data).hexdigest())
        if isinstance(archive.end, tarfile.EmptyHeaderError):
            yield InputItem(printable_path(archive_name), ("error", "unreadable", UNTERMINATED_TAR))
        elif not isinstance(archive.end, tarfile.EOFHeaderError):
            raise tarfile.ReadError(f"no end-of-archive block ({archive.end or 'stopped early'})")


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
        # a URL of one post names it by its file name, as a local .md input does
        rel = printable_path(full[len(root):].lstrip("/") or full.rsplit("/", 1)[-1])
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


def read_item(item: InputItem, max_bytes: int, zips: dict[str, zipfile.ZipFile] | None = None) -> bytes:
    """The raw bytes of a discovered post. Raises Reject (too_large, unreadable, not_a_file).
    `zips` keeps zip archives open from one call to the next (a batch reads each central directory
    once); the caller closes them."""
    loc = item.locator
    kind = loc[0]
    if kind == "error":
        raise Reject(loc[1], loc[2])
    if item.size is not None and item.size > max_bytes:
        raise Reject("too_large", _too_large(item.size, max_bytes))
    try:
        if kind == "bytes":
            data = loc[1]
        elif kind == "file":
            data = read_file(loc[1], max_bytes, item.size)
        elif kind == "zip" and zips is None:
            with zipfile.ZipFile(loc[1]) as archive:
                data = _read_zip_entry(archive, loc, max_bytes, item.size)
        elif kind == "zip":
            archive = zips.get(loc[1]) or zips.setdefault(loc[1], zipfile.ZipFile(loc[1]))
            data = _read_zip_entry(archive, loc, max_bytes, item.size)
        elif kind == "fsspec":
            import fsspec

            with fsspec.open(loc[1], "rb") as fh:
                data = read_capped(fh.read, max_bytes, item.size)  # by its listed size, not the limit
        else:
            raise Reject("unreadable", f"unknown locator {kind!r}")
    except UNREADABLE_ERRORS as exc:
        raise Reject("unreadable", f"{type(exc).__name__}: {exc}") from exc
    if len(data) > max_bytes:
        raise Reject("too_large", f"more than {max_bytes} bytes (--max-bytes)")
    return data


def _read_zip_entry(archive: zipfile.ZipFile, loc: tuple[Any, ...], max_bytes: int, size_hint: int | None) -> bytes:
    """The entry discovery saw, by its index: a name may stand for two entries."""
    info = archive.infolist()[loc[3]]
    if info.filename != loc[2]:
        raise Reject("unreadable", "the archive changed since discovery")
    with archive.open(info) as fh:
        return read_capped(fh.read, max_bytes, size_hint)


def _too_large(size: int, max_bytes: int) -> str:
    return f"{size} bytes > limit {max_bytes} (--max-bytes)"
