"""Discovery walks folders lazily, one listing at a time, yet in the order of a global path sort."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.discover import discover_counted


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
    kinds = {i.source_path: i.locator[0] for i in discover_counted(str(tmp_path))[1]}
    assert kinds["a.md"] == kinds["link.md"] == "error"  # folders named *.md: not_a_file
    assert "linkdir/z.md" not in kinds and "link.md/z.md" not in kinds  # links are not descended
