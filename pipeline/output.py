"""Atomic publication of a build: analysts never see a half-written dataset.

A local output path is a symlink to a complete build folder kept beside it in
`.<name>.builds/`; a build writes into a fresh staging folder there and swaps the symlink
with one rename. Killed at any moment, the previous dataset stays complete and readable;
the next build removes the leftovers.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from pipeline.errors import BuildError


def builds_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.builds"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replaceable(out: Path) -> bool:
    """An output path a build may take over: absent, our symlink, or a plain folder that is
    empty or holds a dataset (never a file, nor a folder of someone's other work)."""
    if out.is_symlink() or not out.exists():
        return True
    if not out.is_dir():
        return False
    names = {p.name for p in out.iterdir()}
    return not names or "manifest.json" in names or "articles" in names


def remove_leftovers(out: Path) -> None:
    """Delete staging folders and links left by killed builds (whose process is gone)."""
    root = builds_dir(out)
    if not root.is_dir():
        return
    for old in root.iterdir():
        if not old.name.startswith(("tmp-", ".link-")):
            continue
        pid = old.name.split("-")[1]
        if not pid.isdigit() or not _pid_alive(int(pid)):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)


def prepare_staging(out: Path) -> Path:
    """A fresh, empty staging folder beside the output; stale ones from killed builds go."""
    root = builds_dir(out)
    try:
        replaceable = _replaceable(out)
    except OSError as exc:
        raise BuildError(f"output path {out} cannot be inspected ({exc.strerror})") from exc
    if not replaceable:
        kind = "a folder that holds no dataset" if out.is_dir() else "not a folder"
        raise BuildError(f"output path {out} exists and is {kind}: refusing to replace it "
                         "(choose another --output or remove it)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out)
        staging = root / f"tmp-{os.getpid()}-{time.time_ns()}"
        staging.mkdir()
    except OSError as exc:
        raise BuildError(f"output folder is not writable: {out.parent} ({exc.strerror})") from exc
    return staging


def publish(staging: Path, out: Path) -> Path:
    """Make `out` point at the finished staging folder in one atomic rename."""
    root = builds_dir(out)
    final = root / f"build-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{time.time_ns() % 10**6}"
    os.rename(staging, final)
    link = root / f".link-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(final, out.parent), link)
    if out.exists() and not out.is_symlink():
        # First build over a plain folder: move it aside (the one non-atomic step, once).
        os.rename(out, root / f"previous-{time.time_ns()}")
    previous = os.readlink(out) if out.is_symlink() else None
    os.replace(link, out)
    # Keep the build that was current until now, so a reader that resolved the link just
    # before the swap can finish; older builds and leftovers of killed builds go.
    keep = {final.name, os.path.basename(previous) if previous else None}
    for old in root.iterdir():
        if old.name in keep or old.name.startswith(("tmp-", ".link-")):
            continue
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return final


def publish_remote(staging: Path, url: str) -> None:
    """fsspec output (object storage): upload beside, then replace. Not atomic on stores
    without rename; documented in the README."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    tmp = f"{path.rstrip('/')}.tmp-{os.getpid()}"
    fs.put(str(staging) + "/", tmp, recursive=True)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    fs.mv(tmp, path, recursive=True)
    shutil.rmtree(staging, ignore_errors=True)
