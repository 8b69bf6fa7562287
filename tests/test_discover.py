"""Discovery walks folders lazily, one listing at a time, yet in the order of a global path sort;
reading trusts the size discovery saw only as far as the file still has it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.build import BuildOptions, build
from pipeline.discover import discover, discover_counted, printable_path, read_item
from pipeline.errors import Reject


def _sorted_reference(root: Path) -> list[str]:
    """Every *.md entry (files, folders, links) under root, as one global sort of the paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        found += [prefix + n for n in dirnames + filenames if n.endswith(".md")]
    return sorted(found)


def test_walk_order_equals_a_global_sort(tmp_path: Path) -> None:
    # names around "/" in sort order ("-" < "." < "/" < "0"), a folder named *.md with posts in it,
    # links to a folder (an entry, never descended), non-ASCII and undecodable names
    for d in ["a", "a.md/x", "a-b", "b/c.md", "Z", "é"]:
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    for f in ["a-b.md", "a b.md", "a/z.md", "a/y.md", "a.md/x/q.md", "a.md/p.md", "a-b/k.md", "b/c.md/d.md",
              "Z/1.md", "é/2.md", "a.md-x.md", "a0.md", "a/notes.txt"]:
        (tmp_path / f).write_text("x", encoding="utf-8")
    os.symlink(tmp_path / "a", tmp_path / "link.md")
    os.symlink(tmp_path / "a", tmp_path / "linkdir")
    (tmp_path / os.fsdecode(b"\xff.md")).write_bytes(b"x")

    total, items = discover_counted(str(tmp_path))
    paths = [i.source_path for i in items]
    reference = [printable_path(p) for p in _sorted_reference(tmp_path)]
    assert paths == reference
    assert total == len(reference) == 16
    uncounted, again = discover_counted(str(tmp_path), count=False)  # no progress bar: no counting walk
    assert uncounted is None and [i.source_path for i in again] == paths
    kinds = {i.source_path: i.locator[0] for i in discover_counted(str(tmp_path))[1]}
    assert kinds["a.md"] == kinds["link.md"] == "error"  # folders named *.md: not_a_file
    assert "linkdir/z.md" not in kinds and "link.md/z.md" not in kinds  # links are not descended


def test_read_sees_a_file_that_changed_since_discovery(tmp_path: Path) -> None:
    post = tmp_path / "p.md"
    post.write_bytes(b"x" * 100)
    (item,) = list(discover_counted(str(tmp_path))[1])
    assert item.size == 100
    post.write_bytes(b"y" * 150)  # grew: read on to the end, not cut at the size discovery saw
    assert read_item(item, max_bytes=1000) == b"y" * 150
    post.write_bytes(b"z" * 40)  # shrank
    assert read_item(item, max_bytes=1000) == b"z" * 40
    post.write_bytes(b"w" * 2000)  # grew past the limit: rejected, not truncated into an article
    with pytest.raises(Reject) as exc:
        read_item(item, max_bytes=1000)
    assert exc.value.reason == "too_large"
    post.unlink()
    with pytest.raises(Reject) as exc:
        read_item(item, max_bytes=1000)
    assert exc.value.reason == "unreadable"


def test_pandas_probe_skipped_but_pandas_still_usable() -> None:
    # in a fresh interpreter: the probe changes pyarrow's state for the whole process
    code = ("import sys; from pipeline.batches import skip_pandas_probe; import pyarrow as pa\n"
            "skip_pandas_probe(); pa.array(['a']); pa.Table.from_pylist([{'a': 1}])\n"
            "assert 'pandas' not in sys.modules, 'pyarrow imported pandas'\n"
            "df = pa.table({'a': [1, 2]}).to_pandas(); assert list(df['a']) == [1, 2]\n")
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def _lock_folder(monkeypatch: pytest.MonkeyPatch, locked: Path) -> None:
    """os.scandir fails on `locked` as on a mode-000 folder for a non-root user."""
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if os.path.normpath(path) == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unlistable_subfolder_is_an_unreadable_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for f in ["a.md", "locked/x.md", "locked/y.md", "z/b.md"]:
        (tmp_path / f).parent.mkdir(exist_ok=True)
        (tmp_path / f).write_text("x", encoding="utf-8")
    _lock_folder(monkeypatch, tmp_path / "locked")
    total, items = discover_counted(str(tmp_path))
    found = {i.source_path: i.locator for i in items}
    assert list(found) == ["a.md", "locked/", "z/b.md"] and total == 3
    assert found["locked/"][:2] == ("error", "unreadable")
    assert "could not be listed" in found["locked/"][2]


def test_unlistable_subfolder_is_a_reject_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inp = tmp_path / "in"
    (inp / "sub" / "locked").mkdir(parents=True)
    (inp / "sub" / "locked" / "x.md").write_text("x", encoding="utf-8")
    (inp / "a.md").write_text("x", encoding="utf-8")
    _lock_folder(monkeypatch, inp / "sub" / "locked")
    out = tmp_path / "out"
    manifest = build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(tmp_path / "cache"), workers=1,
                                  write_card=False))
    rows = {r["source_path"]: r for r in pq.read_table(out / "rejects.parquet").to_pylist()}
    assert rows["sub/locked/"]["reason"] == "unreadable"
    assert "could not be listed" in rows["sub/locked/"]["detail"]
    c = manifest["counts"]
    assert c["inputs"] == 2 == c["articles"] + c["rejects"] + c["duplicates"]


def test_mode_000_subfolder_is_a_reject(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: a mode-000 folder can still be listed")
    locked = tmp_path / "in" / "locked"
    locked.mkdir(parents=True)
    (locked / "x.md").write_text("x", encoding="utf-8")
    locked.chmod(0)
    try:
        found = {i.source_path: i.locator for i in discover_counted(str(tmp_path / "in"))[1]}
    finally:
        locked.chmod(0o700)
    assert found == {"locked/": ("error", "unreadable", found["locked/"][2])}


def test_undecodable_file_names_stay_distinct(tmp_path: Path) -> None:
    # also where an escape could read like a literal backslash sequence of another name
    for raw in (b"f\xff.md", b"f\xfe.md", b"\\xff\xfe.md", b"\xff\\xfe.md"):
        with open(os.path.join(os.fsencode(tmp_path), raw), "wb") as fh:
            fh.write(b"x")
    paths = [i.source_path for i in discover_counted(str(tmp_path))[1]]
    assert len(set(paths)) == 4 and "f\\xff.md" in paths
    for p in paths:
        p.encode("utf-8")  # valid text: no lone surrogates


def test_url_of_one_post_names_it_by_its_file_name() -> None:
    # as a local .md input does: the source_path is never empty
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/one-post-test/sub/one.md", b"---\nfrom: https://example.com/1\n---\n<p>x</p>\n")
    try:
        items = list(discover("memory://one-post-test/sub/one.md"))
        assert [(i.source_path, i.locator[0]) for i in items] == [("one.md", "fsspec")]
        assert [i.source_path for i in discover("memory://one-post-test")] == ["sub/one.md"]
    finally:
        fs.rm("/one-post-test", recursive=True)
