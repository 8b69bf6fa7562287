"""Discovery walks folders lazily, one listing at a time, yet in the order of a global path sort;
reading trusts the size discovery saw only as far as the file still has it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.discover import discover_counted, read_item
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
    reference = [p.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                 for p in _sorted_reference(tmp_path)]
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
