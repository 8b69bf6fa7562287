"""Fast on one machine, identical on a Dask cluster: the local engine with 1 or 2 workers and the
Dask engine on a real multi-process cluster write byte-identical Parquet files, and fsspec inputs
(file://, memory://) give the same dataset as the plain path."""

from __future__ import annotations

import logging
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from pipeline.build import BuildOptions, build
from pipeline.errors import BuildError

distributed = pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parent.parent
DEMO_POSTS = REPO / "pipeline" / "demo_posts"
SLICE_POSTS = 600


def output_bytes(out: Path) -> dict[str, bytes]:
    files = sorted((out / "articles").glob("*.parquet"))
    assert files, f"no article files in {out}"
    result = {f"articles/{p.name}": p.read_bytes() for p in files}
    for name in ("rejects.parquet", "duplicates.parquet"):
        result[name] = (out / name).read_bytes()
    return result


def run(src: str, root: Path, **kw) -> tuple[dict[str, bytes], dict]:
    out = root / "out"
    manifest = build(BuildOptions(input=src, output=str(out), cache_dir=str(root / "cache"), write_card=False, **kw))
    return output_bytes(out), manifest


def assert_same(a: dict[str, bytes], b: dict[str, bytes], what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: different files {sorted(a)} vs {sorted(b)}"
    for name in a:
        assert a[name] == b[name], f"{what}: {name} differs"


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster: scheduler and two single-threaded workers in separate processes."""
    lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR)
    try:
        yield lc
    finally:
        lc.close()


@pytest.fixture(scope="module")
def corpus_slice(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last consecutive date folders of the real corpus, about SLICE_POSTS posts (copies in tmp only)."""
    root = tmp_path_factory.mktemp("slice") / "corpus"
    days = sorted(d for d in (corpus_dir / "archived").iterdir() if d.is_dir() and d.name[:4].isdigit())
    taken = 0
    for day in reversed(days):
        shutil.copytree(day, root / "archived" / day.name)
        taken += sum(1 for _ in day.glob("*.md"))
        if taken >= SLICE_POSTS:
            break
    return root


@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "corpus"])
def test_engines_byte_identical(which: str, request: pytest.FixtureRequest, cluster, tmp_path: Path) -> None:
    src = DEMO_POSTS if which == "demo" else request.getfixturevalue("corpus_slice")
    base, m1 = run(str(src), tmp_path / "local1", engine="local", workers=1)
    two, m2 = run(str(src), tmp_path / "local2", engine="local", workers=2)
    on_dask, md = run(str(src), tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address)
    assert_same(base, two, f"{which}: local workers=1 vs 2")
    assert_same(base, on_dask, f"{which}: local vs dask (existing cluster)")
    assert m1["counts"] == m2["counts"] == md["counts"]
    assert m1["input_fingerprint"] == md["input_fingerprint"]
    assert md["options"]["engine"] == "dask"
    c = md["counts"]
    assert c["inputs"] == c["articles"] + c["rejects"] + c["duplicates"]
    if which == "corpus":
        assert c["inputs"] >= SLICE_POSTS and c["articles"] > SLICE_POSTS // 2
        assert len(list((tmp_path / "dask" / "cache" / "shards").rglob("*.arrow"))) > 1, "want several batches"


@pytest.mark.slow
def test_dask_own_local_cluster(tmp_path: Path) -> None:
    """No scheduler given: the engine starts a LocalCluster, uses it and closes it."""
    base, _ = run(str(DEMO_POSTS), tmp_path / "local", workers=1)
    own, manifest = run(str(DEMO_POSTS), tmp_path / "dask", engine="dask", workers=2)
    assert_same(base, own, "local vs dask (own LocalCluster)")
    assert manifest["counts"]["inputs"] == 37


def test_file_url_equals_path(corpus_slice: Path, cluster, tmp_path: Path) -> None:
    base, _ = run(str(corpus_slice), tmp_path / "path", workers=1)
    via_url, _ = run(corpus_slice.as_uri(), tmp_path / "url", workers=2)
    assert_same(base, via_url, "file:// URL vs path (local)")
    on_dask, _ = run(corpus_slice.as_uri(), tmp_path / "dask", engine="dask", scheduler=cluster.scheduler_address)
    assert_same(base, on_dask, "file:// URL on dask vs path (local)")


def test_memory_url_equals_path(tmp_path: Path) -> None:
    """memory:// is per-process, so only the local engine with one worker can read it."""
    fs = fsspec.filesystem("memory")
    root = "/pipeline-test-demo"
    try:
        for p in sorted(DEMO_POSTS.rglob("*.md")):
            fs.pipe(f"{root}/{p.relative_to(DEMO_POSTS).as_posix()}", p.read_bytes())
        base, m_path = run(str(DEMO_POSTS), tmp_path / "path", workers=1)
        in_memory, m_mem = run(f"memory://{root}", tmp_path / "memory", workers=1)
        assert m_mem["counts"]["inputs"] == 37 and m_mem["counts"]["rejects"] == 0
        assert m_mem["counts"] == m_path["counts"]
        assert_same(base, in_memory, "memory:// vs path")
    finally:
        fs.rm(root, recursive=True)


def test_dask_refuses_memory_url(cluster, tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    root = "/pipeline-test-refuse"
    post = next(iter(sorted(DEMO_POSTS.rglob("*.md"))))
    fs.pipe(f"{root}/a/{post.name}", post.read_bytes())
    try:
        with pytest.raises(BuildError, match="memory://"):
            run(f"memory://{root}", tmp_path, engine="dask", scheduler=cluster.scheduler_address)
        assert not (tmp_path / "out").exists()
    finally:
        fs.rm(root, recursive=True)


@pytest.fixture
def closed_port() -> Iterator[str]:
    """tcp://127.0.0.1:PORT where nothing listens: the port is bound (so nothing else takes it)
    but not listening, so connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def loop_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "IO loop"}


def test_unreachable_scheduler(monkeypatch: pytest.MonkeyPatch, closed_port: str, tmp_path: Path) -> None:
    import pipeline.engines.dask as dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", "1s")
    before = loop_threads()
    with pytest.raises(BuildError, match="cannot reach the Dask scheduler"):
        run(str(DEMO_POSTS), tmp_path, engine="dask", scheduler=closed_port)
    assert not (tmp_path / "out").exists()
    assert loop_threads() <= before, "the failed client left its IO-loop thread running"


@pytest.mark.parametrize("address", ["localhost", "notaurl", "foo://host:8786", "tcp://host:0", "tcp://host:x"])
def test_malformed_scheduler_address(address: str, tmp_path: Path) -> None:
    before = loop_threads()
    with pytest.raises(BuildError, match="not a Dask scheduler address"):
        run(str(DEMO_POSTS), tmp_path, engine="dask", scheduler=address)
    assert not (tmp_path / "out").exists()
    assert loop_threads() <= before


def test_failed_client_cleans_up() -> None:
    """Past the address check, a Client whose constructor fails with something other than
    OSError (here distributed's own ValueError) is closed on the spot, not at interpreter exit."""
    from pipeline.engines.dask import _closing_client

    before = loop_threads()
    with pytest.raises(ValueError, match="missing port"):
        _closing_client(distributed.Client, "1s")("localhost", timeout="10s", set_as_default=False)
    assert loop_threads() <= before


@pytest.mark.parametrize("address", ["localhost", "unreachable"])
def test_cli_bad_scheduler_exits_promptly(address: str, closed_port: str, tmp_path: Path) -> None:
    """A bad --scheduler is one error line and exit 2, without the 20 s hang and the
    'Exception ignored in Client.__del__' a half-built Client used to cause at exit."""
    import subprocess
    import sys
    import time

    scheduler = closed_port if address == "unreachable" else address
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "build", "--input", str(DEMO_POSTS),
                           "--output", str(tmp_path / "out"), "--engine", "dask", "--scheduler", scheduler,
                           "--no-card", "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    want = "cannot reach the Dask scheduler" if address == "unreachable" else "not a Dask scheduler address"
    assert want in proc.stderr and scheduler in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert took < 10, f"took {took:.1f}s: {proc.stderr}"
    assert not (tmp_path / "out").exists()


def test_local_engine_does_not_import_dask() -> None:
    import subprocess
    import sys

    code = ("import sys, tempfile, pathlib\n"
            "from pipeline.build import BuildOptions, build\n"
            "d = pathlib.Path(tempfile.mkdtemp())\n"
            f"build(BuildOptions(input={str(DEMO_POSTS)!r}, output=str(d / 'o'), cache_dir=str(d / 'c'),"
            " workers=2, write_card=False))\n"
            "bad = [m for m in sys.modules if m == 'dask' or m.startswith(('dask.', 'distributed'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_dask_refuses_workers_with_other_code(cluster, tmp_path: Path) -> None:
    """A worker whose pipeline code differs from the client's would write other results."""
    from pipeline.batches import code_fingerprint

    def pretend_other_code() -> None:
        import pipeline.batches as b

        b._real_code_fingerprint = b.code_fingerprint
        b.code_fingerprint = lambda: "0123456789abcdef"  # only on the workers

    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        original = client.run(code_fingerprint)
        client.run(pretend_other_code)
        with pytest.raises(BuildError, match="different pipeline code"):
            run(str(DEMO_POSTS), tmp_path, engine="dask", scheduler=cluster.scheduler_address)
    finally:
        def restore() -> None:
            import pipeline.batches as b

            b.code_fingerprint = b._real_code_fingerprint

        client.run(restore)
        assert client.run(code_fingerprint) == original
        client.close()
