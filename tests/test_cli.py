"""`python -m pipeline build|validate` as a user runs it: exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GOOD = """---
layout: post
title: "英國宣布新措施"
date: 2020-09-30T23:58:08.000Z
author: BBC
from: https://www.bbc.com/zhongwen/trad/world-{n}
tags: [ BBC ]
categories: [ BBC ]
---
<!--1601510288000-->
[英國宣布新措施](https://www.bbc.com/zhongwen/trad/world-{n})
------

<div><p>倫敦消息，英國政府今天宣布新的防疫措施。</p></div>
"""


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def make_input(tmp_path: Path) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.md").write_text(GOOD.format(n=1), encoding="utf-8")
    (inp / "b.md").write_text(GOOD.format(n=2), encoding="utf-8")
    return inp


def build_args(inp: Path, out: Path, *extra: str) -> list[str]:
    return ["build", "--input", str(inp), "--output", str(out), "--workers", "1", "--no-card", *extra]


def test_missing_input(tmp_path: Path) -> None:
    r = run(*build_args(tmp_path / "nope", tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: input not found or not a folder, .zip, .tar.gz or .md file: {tmp_path / 'nope'}"
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--max-bytes", "0", "from 1 to 1 TiB"),  # every post would end as too_large
    ("--max-bytes", "-1", "from 1 to 1 TiB"),
    ("--max-bytes", "1e30k", "from 1 to 1 TiB"),  # a read of max_bytes + 1 would overflow
    ("--max-bytes", "lots", "invalid"),
    ("--max-bytes", "1e400k", "not a finite size"),
    ("--max-bytes", "infk", "not a finite size"),
    ("--max-bytes", "nank", "invalid"),
    ("--workers", "-2", "must be 0 (all cores) or more"),
])
def test_option_values_out_of_range(tmp_path: Path, option: str, value: str, message: str) -> None:
    r = run("build", "--input", str(make_input(tmp_path)), "--output", str(tmp_path / "out"), f"{option}={value}")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_input_is_not_a_post(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    r = run(*build_args(tmp_path / "notes.txt", tmp_path / "out"))
    assert r.returncode == 2 and r.stderr.startswith("error: input not found")


def test_corrupt_zip_input(tmp_path: Path) -> None:
    (tmp_path / "in.zip").write_bytes(b"PK\x03\x04 not really")
    r = run(*build_args(tmp_path / "in.zip", tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: cannot open zip archive") and "Traceback" not in r.stderr


def test_output_under_a_file(tmp_path: Path) -> None:
    """The output's parent is a regular file: nothing can be written there."""
    inp = make_input(tmp_path)
    (tmp_path / "afile").write_text("x")
    r = run(*build_args(inp, tmp_path / "afile" / "out"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: cache folder is not writable") and "Traceback" not in r.stderr
    # with the cache elsewhere, the output itself is the problem
    r = run(*build_args(inp, tmp_path / "afile" / "out", "--cache-dir", str(tmp_path / "cache")))
    assert r.returncode == 2
    assert r.stderr.startswith("error: output folder is not writable") and "Traceback" not in r.stderr


def test_unwritable_output_folder(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: a read-only bind is not available here
            import pytest

            pytest.skip("running as root: permissions are not enforced")
        r = run(*build_args(inp, locked / "out", "--cache-dir", str(tmp_path / "cache")))
        assert r.returncode == 2 and r.stderr.startswith("error: output folder is not writable")
    finally:
        locked.chmod(0o700)


def test_output_is_a_file_or_a_foreign_folder(tmp_path: Path) -> None:
    """Never replace something that is not a dataset."""
    inp = make_input(tmp_path)
    f = tmp_path / "report.txt"
    f.write_text("keep me")
    r = run(*build_args(inp, f))
    assert r.returncode == 2 and "refusing to replace it" in r.stderr
    assert f.read_text() == "keep me"
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("keep me too")
    r = run(*build_args(inp, home))
    assert r.returncode == 2 and "refusing to replace it" in r.stderr
    assert (home / "thesis.tex").read_text() == "keep me too"


def test_old_plain_dataset_folder_is_taken_over(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    r = run(*build_args(inp, out))
    assert r.returncode == 0, r.stderr
    assert out.is_symlink()
    assert json.loads((out / "manifest.json").read_text())["counts"]["articles"] == 2


def test_only_posts_failed_exits_zero(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    (inp / "empty.md").write_bytes(b"")
    (inp / "binary.md").write_bytes(bytes(range(256)) * 20)
    (inp / "nourl.md").write_text(GOOD.format(n=3).replace("from: ", "fromm: "), encoding="utf-8")
    out = tmp_path / "out"
    r = run(*build_args(inp, out))
    assert r.returncode == 0, r.stderr
    assert "5 inputs -> 2 articles, 0 duplicates, 3 rejects" in r.stdout
    assert "reject empty_file: 1" in r.stdout and "reject binary_content: 1" in r.stdout
    assert "reject no_url: 1" in r.stdout
    v = run("validate", str(out))
    assert v.returncode == 0, v.stderr


def test_all_posts_failed_exits_zero(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "empty.md").write_bytes(b"")
    out = tmp_path / "out"
    r = run(*build_args(inp, out))
    assert r.returncode == 0, r.stderr
    assert "1 inputs -> 0 articles, 0 duplicates, 1 rejects" in r.stdout
    v = run("validate", str(out))
    assert v.returncode == 0, v.stderr


def test_empty_input_folder(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    out = tmp_path / "out"
    r = run(*build_args(inp, out))
    assert r.returncode == 0, r.stderr
    assert "0 inputs -> 0 articles" in r.stdout
    assert run("validate", str(out)).returncode == 0


def test_validate_reports_problems(tmp_path: Path) -> None:
    inp = make_input(tmp_path)
    out = tmp_path / "out"
    assert run(*build_args(inp, out)).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["counts"]["inputs"] = 7
    (out / "manifest.json").write_text(json.dumps(manifest))
    v = run("validate", str(out))
    assert v.returncode == 1
    assert v.stderr.startswith(f"INVALID dataset {out}")
    assert "inputs 7 != articles 2 + rejects 0 + duplicates 0" in v.stderr


def test_bad_max_bytes_is_a_usage_error(tmp_path: Path) -> None:
    r = run(*build_args(make_input(tmp_path), tmp_path / "out", "--max-bytes", "lots"))
    assert r.returncode == 2 and "--max-bytes" in r.stderr


def test_cli_starts_openblas_without_a_thread_pool(tmp_path: Path) -> None:
    """`python -m pipeline` sets OPENBLAS_NUM_THREADS=1 (unless the user chose) before numpy loads;
    importing the package anywhere else (a notebook, pytest) leaves the environment alone."""
    probe = tmp_path / "probe"
    probe.mkdir()
    # sitecustomize runs before the CLI; its exit hook reports what the CLI's process ended with
    (probe / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "atexit.register(lambda: sys.stderr.write(f\"BLAS={os.environ.get('OPENBLAS_NUM_THREADS')}\\n\"))\n",
        encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env = {**base, "PYTHONPATH": f"{probe}{os.pathsep}{REPO}"}
    cli = [sys.executable, "-m", "pipeline", "build", "--help"]
    assert "BLAS=1" in subprocess.run(cli, capture_output=True, text=True, env=env, timeout=60).stderr
    chosen = subprocess.run(cli, capture_output=True, text=True, env={**env, "OPENBLAS_NUM_THREADS": "2"}, timeout=60)
    assert "BLAS=2" in chosen.stderr
    imported = subprocess.run([sys.executable, "-c", "import pipeline"], capture_output=True, text=True,
                              env=env, timeout=60)
    assert "BLAS=None" in imported.stderr
    tool = probe / "othertool"  # another `python -m` tool that imports the package
    tool.mkdir()
    (tool / "__init__.py").write_text("import pipeline\n", encoding="utf-8")
    (tool / "__main__.py").write_text("", encoding="utf-8")
    other = subprocess.run([sys.executable, "-m", "othertool"], capture_output=True, text=True, env=env, timeout=60)
    assert "BLAS=None" in other.stderr, other.stderr


def test_cli_build_allocates_nothing_from_mimalloc(tmp_path: Path) -> None:
    """`python -m pipeline build` makes glibc's malloc Arrow's C++ default too (the Parquet writer
    and IPC reader allocate from it, not from pyarrow's Python-level pool): no byte from mimalloc."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "def report():\n"
        "    if 'pyarrow' in sys.modules:\n"
        "        import pyarrow as pa\n"
        "        sys.stderr.write(f'MIMALLOC_MAX={pa.mimalloc_memory_pool().max_memory()}\\n')\n"
        "atexit.register(report)\n", encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"},
           "PYTHONPATH": f"{probe}{os.pathsep}{REPO}"}
    cli = [sys.executable, "-m", "pipeline", "build", "--input", str(REPO / "pipeline" / "demo_posts"),
           "--output", str(tmp_path / "out"), "--workers", "1", "--quiet", "--no-card"]
    run = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "MIMALLOC_MAX=0" in run.stderr, run.stderr
    assert (tmp_path / "out" / "articles").is_dir()


def test_max_bytes_out_of_range_in_the_api(tmp_path: Path) -> None:
    from pipeline.build import BuildOptions, build
    from pipeline.errors import BuildError

    (tmp_path / "posts").mkdir()
    inp = make_input(tmp_path / "posts")
    for bad in (0, -1, 1 << 50, True):
        with pytest.raises(BuildError, match="from 1 to 1 TiB"):
            build(BuildOptions(input=str(inp), output=str(tmp_path / "out"), workers=1, write_card=False,
                               max_bytes=bad))
    assert not (tmp_path / "out").exists()
