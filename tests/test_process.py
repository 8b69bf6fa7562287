"""process_posts: a batch runs each stage over all its posts, and still gives every post the result
it would have on its own. All posts here are written by the tests."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from _synthetic_posts import make_post

import pipeline.process as process_mod
from pipeline.errors import Reject
from pipeline.process import process_post, process_posts


def synthetic(count: int, seed: int = 11) -> list[tuple[str, bytes, str | None]]:
    rng = random.Random(seed)
    return [(f"p{n:02d}.md", make_post(rng, n)[1].encode(), None) for n in range(count)]


HOSTILE = [("empty.md", b"", None), ("binary.md", random.Random(1).randbytes(3000), None),
           ("nofront.md", b"just text\n", None), ("nourl.md", b"---\nauthor: BBC\n---\n<p>x</p>", None)]


def when_marked(real: Callable[..., Any], marker: bytes, exc: Exception) -> Callable[..., Any]:
    """`real`, raising `exc` when any bytes argument holds `marker` (which post it is called for)."""
    def stage(*args: Any) -> Any:
        if any(isinstance(a, bytes) and marker in a for a in args):
            raise exc
        return real(*args)
    return stage


def test_batch_gives_each_post_its_own_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """Posts that fail in any stage (a Reject or a bug) among good ones: every post gets exactly
    the result it gets in a batch of one, in input order; the failures touch no neighbour."""
    posts = synthetic(12)
    posts[3] = (posts[3][0], posts[3][1].replace(b"<div>", b"<div><p>BOOM-PARSE</p>", 1), None)
    posts[5] = (posts[5][0], posts[5][1].replace(b"<div>", b"<div><p>BOOM-CLEAN</p>", 1), None)
    posts[8] = (posts[8][0], posts[8][1].replace(b"<div>", b"<div><p>BOOM-REJECT</p>", 1), None)
    posts[1:1] = HOSTILE[:2]
    posts[9:9] = HOSTILE[2:]
    monkeypatch.setattr(process_mod, "parse_post",
                        when_marked(process_mod.parse_post, b"BOOM-PARSE", KeyError("parse bug")))
    monkeypatch.setattr(process_mod, "clean_body",
                        when_marked(process_mod.clean_body, b"BOOM-CLEAN", ZeroDivisionError("clean bug")))
    monkeypatch.setattr(process_mod, "clean_body",
                        when_marked(process_mod.clean_body, b"BOOM-REJECT", Reject("binary_content", "odd")))
    real_assemble = process_mod.assemble_article

    def assemble(source_path: str, *rest: Any) -> dict[str, Any]:
        if source_path == "p10.md":
            raise RuntimeError("assemble bug")
        return real_assemble(source_path, *rest)

    monkeypatch.setattr(process_mod, "assemble_article", assemble)
    batch = process_posts(posts)
    assert batch == [process_post(*p) for p in posts]
    by_path = {p[0]: row for p, (_, row) in zip(posts, batch, strict=True)}
    assert by_path["p03.md"]["reason"] == "internal_error" and by_path["p03.md"]["source"] is None
    assert by_path["p05.md"]["reason"] == "internal_error" and "ZeroDivisionError" in by_path["p05.md"]["detail"]
    assert by_path["p08.md"]["reason"] == "binary_content" and by_path["p08.md"]["source"] is not None
    assert by_path["p10.md"]["reason"] == "internal_error" and "assemble bug" in by_path["p10.md"]["detail"]
    for path, raw, _ in posts:
        if path in ("p03.md", "p05.md", "p08.md", "p10.md") or (path, raw, None) in HOSTILE:
            assert "article_id" not in by_path[path] and by_path[path]["size_bytes"] == len(raw)
        else:
            assert by_path[path]["source_path"] == path and by_path[path]["article_id"]


def test_rejected_post_reaches_no_later_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    real_clean = process_mod.clean_body

    def clean(body: bytes, rules: Any) -> dict[str, Any]:
        seen.append(body)
        return real_clean(body, rules)

    monkeypatch.setattr(process_mod, "clean_body", clean)
    results = process_posts([*HOSTILE, *synthetic(3)])
    assert [kind for kind, _ in results] == ["reject"] * 4 + ["article"] * 3
    assert len(seen) == 3


def big_posts(count: int, paragraphs: int) -> list[tuple[str, bytes, str | None]]:
    out = []
    for path, raw, _ in synthetic(count, seed=3):
        head, _, tail = raw.partition(b"<div>")
        body = "".join(f"<p>政府今天宣布新的措施將於下週生效{k}。</p>" for k in range(paragraphs)).encode()
        out.append((path, head + b"<div>" + body + tail, None))
    return out


def peak_mib(run: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        kept = run()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del kept
    return peak / 2**20


def test_batch_holds_no_more_than_posts_one_by_one() -> None:
    """A batch keeps what each stage made of every post until the next stage, but not the body's
    bytes once the clean stage has read them: its peak is no higher than processing the posts one
    at a time (it was a third higher when every post's body stayed to the batch's end)."""
    posts = big_posts(4, 20_000)  # about 1.8 MB each
    one_by_one = peak_mib(lambda: [process_post(*p) for p in posts])
    batch = peak_mib(lambda: process_posts(posts))
    assert batch <= one_by_one * 1.05, (batch, one_by_one)
