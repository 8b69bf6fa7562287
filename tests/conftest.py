"""Shared fixtures: where the real corpus is, and one build of it per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_POSTS = REPO / "pipeline" / "demo_posts"


def corpus_path() -> Path | None:
    """$CORPUS_DIR, else ../shared/corpus beside the repository."""
    env = os.environ.get("CORPUS_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "corpus")
    for c in candidates:
        if (c / "archived").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = corpus_path()
    if path is None:
        pytest.skip("shared corpus not found: set CORPUS_DIR or place it at ../shared/corpus")
    return path


@pytest.fixture(scope="session")
def corpus_build(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole shared corpus built once (all cores, fresh cache); returns the output folder."""
    from pipeline.build import BuildOptions, build

    root = tmp_path_factory.mktemp("corpus-build")
    out = root / "outputs"
    build(BuildOptions(input=str(corpus_dir), output=str(out), cache_dir=str(root / "cache")))
    return out


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo posts built once; returns the output folder."""
    from pipeline.build import BuildOptions, build

    root = tmp_path_factory.mktemp("demo-build")
    out = root / "outputs"
    build(BuildOptions(input=str(DEMO_POSTS), output=str(out), cache_dir=str(root / "cache"), workers=1))
    return out
