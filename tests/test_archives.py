"""Archive inputs (.zip, .tar, .tar.gz) read in place: a bad member ends as a reject, a corrupt or
truncated archive fails the build with one line, nothing is silently lost, and a member is never
read past the size limit. All posts here are written by the tests."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.build import BuildOptions, build
from pipeline.discover import UNTERMINATED_TAR, discover, discover_counted, read_item
from pipeline.errors import BuildError, Reject
from pipeline.validate import validate_dataset

REPO = Path(__file__).resolve().parent.parent


def post(n: int, body: str = "倫敦消息，英國政府今天宣布新的防疫措施。") -> str:
    url = f"https://www.bbc.com/zhongwen/trad/world-{54360100 + n}"
    return (f'---\nlayout: post\ntitle: "標題{n}"\ndate: 2020-09-30T23:58:08.000Z\nauthor: BBC\nfrom: {url}\n'
            f"tags: [ BBC ]\ncategories: [ BBC ]\n---\n<!--1601510288000-->\n[標題{n}]({url})\n------\n\n"
            f"<div><p>{body}</p></div>\n")


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def eight_posts() -> dict[str, bytes]:
    """Eight members of one header block and one data block each."""
    posts = {f"p{n}.md": post(n, "措施下週一生效。").encode() for n in range(8)}
    assert all(len(data) <= 512 for data in posts.values())
    return posts


def build_input(tmp_path: Path, inp: Path, **kw: Any) -> dict[str, Any]:
    out = tmp_path / "out"
    manifest = build(BuildOptions(input=str(inp), output=str(out), cache_dir=str(tmp_path / "cache"), workers=1,
                                  write_card=False, **kw))
    c = manifest["counts"]
    assert c["inputs"] == c["articles"] + c["rejects"] + c["duplicates"]
    return {"manifest": manifest, "articles": pq.read_table(out / "articles").to_pylist(),
            "rejects": pq.read_table(out / "rejects.parquet").to_pylist()}


# -- zip ----------------------------------------------------------------------------------------


def corrupt_zip(path: Path) -> None:
    """Three deflated posts; the first one's compressed bytes damaged (archive bytes 80-90)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(3):
            zf.writestr(f"p{n}.md", post(n, f"第{n}段。" * 200))
    data = bytearray(path.read_bytes())
    data[80:90] = b"\xff" * 10
    path.write_bytes(bytes(data))


def test_corrupt_zip_member_is_unreadable_for_read_item(tmp_path: Path) -> None:
    corrupt_zip(tmp_path / "in.zip")
    items = list(discover(str(tmp_path / "in.zip")))
    with pytest.raises(Reject) as exc:
        read_item(items[0], 1 << 20)
    assert exc.value.reason == "unreadable"
    assert all(read_item(i, 1 << 20).startswith(b"---") for i in items[1:])


def test_corrupt_zip_member_is_a_reject_and_the_others_build(tmp_path: Path) -> None:
    corrupt_zip(tmp_path / "in.zip")
    res = build_input(tmp_path, tmp_path / "in.zip")
    assert [(r["source_path"], r["reason"]) for r in res["rejects"]] == [("p0.md", "unreadable")]
    assert sorted(r["source_path"] for r in res["articles"]) == ["p1.md", "p2.md"]


def test_zip_entries_of_one_name_are_each_read(tmp_path: Path) -> None:
    path = tmp_path / "in.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("dup.md", post(1))
        zf.writestr("dup.md", post(2))
    items = list(discover(str(path)))
    assert [i.source_path for i in items] == ["dup.md", "dup.md#2"]  # each input its own path
    assert [read_item(i, 1 << 20) for i in items] == [post(1).encode(), post(2).encode()]
    res = build_input(tmp_path, path)  # the build's reader (a batch keeps the archive open) too
    assert sorted((r["source_path"], r["url"][-8:]) for r in res["articles"]) == [
        ("dup.md", "54360101"), ("dup.md#2", "54360102")]
    assert validate_dataset(tmp_path / "out") == []


@pytest.mark.parametrize("mode, suffix", [("w:gz", ".tar.gz"), ("w", ".tar")])
def test_tar_entries_of_one_name_each_have_a_path(tmp_path: Path, mode: str, suffix: str) -> None:
    # appending to a tar adds a second member of the same name; both are inputs
    path = tmp_path / f"in{suffix}"
    with tarfile.open(path, mode) as tf:
        for n in (1, 2, 3):
            data = post(n).encode()
            info = tarfile.TarInfo("dup.md")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert [i.source_path for i in discover(str(path))] == ["dup.md", "dup.md#2", "dup.md#3"]
    res = build_input(tmp_path, path)
    assert sorted(r["source_path"] for r in res["articles"]) == ["dup.md", "dup.md#2", "dup.md#3"]
    assert validate_dataset(tmp_path / "out") == []


# -- tar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, suffix", [("w:gz", ".tar.gz"), ("w", ".tar")])
def test_truncated_tar_fails_the_build(tmp_path: Path, mode: str, suffix: str) -> None:
    """Cut inside a header after the first member (where tarfile itself stops silently)."""
    whole = write_tar(tmp_path / f"whole{suffix}", eight_posts(), mode)
    cut = tmp_path / f"cut{suffix}"
    # a gzip stream's first two thirds; a plain tar within the third member's header
    cut.write_bytes(whole[:len(whole) * 2 // 3] if suffix == ".tar.gz" else whole[:2 * 1024 + 100])
    with pytest.raises(BuildError, match="corrupt or truncated"):
        list(discover(str(cut)))
    with pytest.raises(BuildError, match="corrupt or truncated"):
        build_input(tmp_path, cut)


@pytest.mark.parametrize("mode, suffix, step", [("w:gz", ".tar.gz", 1), ("w", ".tar", 7)])
def test_a_cut_tar_is_whole_or_an_error_never_part(tmp_path: Path, mode: str, suffix: str, step: int) -> None:
    """Cut anywhere (at a header boundary too, where tarfile itself stops silently): either every
    member is there or discovery fails. The one exception is a plain tar cut exactly where a header
    would start: its bytes are those of an archive written without its end-of-archive blocks, which
    GNU tar reads whole, so the members before the cut are read (a gzip stream cut short fails)."""
    whole = write_tar(tmp_path / f"whole{suffix}", eight_posts(), mode)
    cut = tmp_path / f"cut{suffix}"
    # every member is one header block and one data block: a header would start at each 1024
    ends = set(range(0, len(whole), step)) | ({*range(0, len(whole), 512)} if suffix == ".tar" else set())
    for end in sorted(ends):
        cut.write_bytes(whole[:end])
        try:
            found = list(discover(str(cut)))
        except BuildError as exc:
            assert "\n" not in str(exc)
            continue
        at_boundary = suffix == ".tar" and 0 < end <= 8 * 1024 and end % 1024 == 0
        posts = [i for i in found if i.source_path != cut.name]
        assert len(posts) == (end // 1024 if at_boundary else 8), f"cut at {end}: {len(posts)} members"
        # never silently: the row naming the archive says its tail may be missing
        unterminated = [i.locator for i in found if i.source_path == cut.name]
        assert unterminated == ([("error", "unreadable", UNTERMINATED_TAR)] if at_boundary else [])


def tar_without_end_blocks(members: dict[str, bytes]) -> bytes:
    """A plain tar's bytes up to the end of its last member's padded data, without the zero blocks
    that close() adds: what a writer that never closed its archive leaves."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        end = tf.offset
    return buf.getvalue()[:end]


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
@pytest.mark.parametrize("last", ["padded-post", "one-block-post", "not-a-post"])
def test_tar_without_end_blocks_is_read_whole(tmp_path: Path, suffix: str, last: str) -> None:
    """GNU tar reads an archive that stops right after its last member's (padded) data: so do we, and
    say that it may have been cut there.
    The last member is read (with or without padding after its data) or skipped unread."""
    members = {"block.md": post(9).encode().ljust(1024), **eight_posts()}
    if last == "one-block-post":  # 1024 bytes: no padding after its data
        members["block.md"] = members.pop("block.md")
    elif last == "not-a-post":
        members["notes.txt"] = b"n" * 700
    data = tar_without_end_blocks(members)
    assert not data.endswith(bytes(512)) and len(data) % 512 == 0
    path = tmp_path / f"in{suffix}"
    path.write_bytes(gzip.compress(data) if suffix == ".tar.gz" else data)
    posts = sorted(name for name in members if name.endswith(".md"))
    assert sorted(i.source_path for i in discover(str(path))) == sorted([*posts, path.name])
    res = build_input(tmp_path, path)
    assert sorted(r["source_path"] for r in res["articles"]) == posts
    # every member is read, and one row says the archive may have been cut there
    assert [(r["source_path"], r["reason"], r["detail"]) for r in res["rejects"]] == [
        (path.name, "unreadable", UNTERMINATED_TAR)]


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
@pytest.mark.parametrize("last", ["p8.md", "notes.txt"])  # a member read, or one skipped unread
@pytest.mark.parametrize("where", ["in-header", "after-header", "in-data", "before-padding", "in-padding"])
def test_tar_without_end_blocks_cut_inside_a_member_fails(tmp_path: Path, suffix: str, last: str,
                                                         where: str) -> None:
    """No end blocks, and the last member cut short (inside a whole gzip stream for .tar.gz): the
    archive is truncated, not merely unclosed, and the build fails."""
    whole = tar_without_end_blocks({**eight_posts(), last: post(8).encode().ljust(700)})
    header = len(whole) - 512 - 1024  # the last member: one header block, 700 bytes of data, padding
    end = header + {"in-header": 100, "after-header": 512, "in-data": 512 + 300, "before-padding": 512 + 700,
                    "in-padding": 1535}[where]
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(gzip.compress(whole[:end]) if suffix == ".tar.gz" else whole[:end])
    with pytest.raises(BuildError, match="corrupt or truncated"):
        list(discover(str(path)))
    with pytest.raises(BuildError, match="corrupt or truncated"):
        build_input(tmp_path, path)


@pytest.mark.parametrize("in_gzip_header", [True, False])  # a TypeError inside tarfile; two thirds kept
def test_truncated_tar_gz_exits_2_with_one_line(tmp_path: Path, in_gzip_header: bool) -> None:
    whole = write_tar(tmp_path / "whole.tar.gz", eight_posts())
    (tmp_path / "cut.tar.gz").write_bytes(whole[:3] if in_gzip_header else whole[:len(whole) * 2 // 3])
    r = subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", str(tmp_path / "cut.tar.gz"),
                        "--output", str(tmp_path / "out"), "--workers", "1", "--no-card"], capture_output=True,
                       text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: tar archive") and r.stderr.count("\n") == 1, r.stderr


class _Zeros(io.RawIOBase):
    """n zero bytes, made as they are read (the test itself holds no big buffer)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        k = min(len(buf), self.left)
        buf[:k] = bytes(k)
        self.left -= k
        return k


def test_tar_member_over_the_limit_is_never_read(tmp_path: Path) -> None:
    big = 64 << 20
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("big.md")
        info.size = big
        tf.addfile(info, io.BufferedReader(_Zeros(big)))
        for name, data in (("small.md", post(1).encode()), ("limit.md", b"z" * (1 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tracemalloc.start()
    try:
        items = {i.source_path: i for i in discover_counted(str(path), max_bytes=1 << 20)[1]}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"discovery held {peak >> 20} MiB"
    assert items["big.md"].size == big
    with pytest.raises(Reject) as exc:
        read_item(items["big.md"], 1 << 20)
    assert exc.value.reason == "too_large"
    assert read_item(items["small.md"], 1 << 20) == post(1).encode()
    assert read_item(items["limit.md"], 1 << 20) == b"z" * (1 << 20)  # exactly the limit: read

    res = build_input(tmp_path, path, max_bytes=1 << 20)  # the build passes its limit to discovery
    big_row = next(r for r in res["rejects"] if r["source_path"] == "big.md")
    assert big_row["reason"] == "too_large" and big_row["size_bytes"] == big


def test_tar_member_over_the_default_limit_without_a_build(tmp_path: Path) -> None:
    """Callers that do not pass a limit get the build's default one, not an unbounded read."""
    path = tmp_path / "in.tar"
    write_tar(path, {"big.md": b"a" * (9 << 20)}, "w")
    (item,) = discover(str(path))
    assert item.locator[0] == "error" and item.locator[1] == "too_large" and item.size == 9 << 20


def test_undecodable_tar_member_names_are_distinct_valid_text(tmp_path: Path) -> None:
    path = tmp_path / "in.tar.gz"
    write_tar(path, {os.fsdecode(b"f\xff.md"): post(1).encode(), os.fsdecode(b"f\xfe.md"): post(2).encode()})
    res = build_input(tmp_path, path)
    paths = sorted(r["source_path"] for r in res["articles"])
    assert paths == ["f\\xfe.md", "f\\xff.md"]
    json.dumps(paths, ensure_ascii=False).encode("utf-8")  # no lone surrogates

