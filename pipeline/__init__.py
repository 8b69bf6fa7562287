"""Raw news-beyond-wall posts -> a clean, credited, dated Parquet dataset.

`from pipeline import load, load_credits` for analysts; `python -m pipeline build` to build.
"""

from __future__ import annotations

import os
import sys


def _run_as_cli() -> bool:
    """True while `python -m pipeline` imports this package (sys.argv[0] is "-m" until the module
    runs), not when a script, a notebook or another `-m` tool imports it."""
    argv = getattr(sys, "orig_argv", [])
    return sys.argv[:1] == ["-m"] and ("-mpipeline" in argv or any(
        a == "-m" and b == "pipeline" for a, b in zip(argv, argv[1:], strict=False)))


# The build CLI does no linear algebra: numpy, which pyarrow imports, then starts OpenBLAS without
# a thread pool. The pool's threads busy-wait about 0.1 s of CPU each at start-up, on the cores the
# build is about to use. Only then, and only when the user has not chosen: a notebook importing
# this package keeps its BLAS threads. The variable passes on to the build's processes (a Dask
# LocalCluster's too).
# Likewise Arrow's C++ default allocator (mimalloc): pyarrow.set_memory_pool only reaches what
# Python asks for, while the Parquet writer and the IPC reader allocate from the C++ default.
# mimalloc hands them fresh transparent huge pages, zeroed 2 MiB at a time (perf: a sixth of the
# writer threads' system time); glibc's heap reuses its pages (see batches.use_system_allocator).
if _run_as_cli():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from pipeline.schema import PIPELINE_VERSION  # noqa: E402

__version__ = PIPELINE_VERSION
__all__ = ["load", "load_credits", "__version__"]


# Bound eagerly: `pipeline.load` is both a submodule and a function, so a lazy __getattr__
# would return the module once anything imported it. pipeline.load imports only pyarrow;
# pandas loads inside the functions, so `python -m pipeline build` stays light.
from pipeline.load import load, load_credits  # noqa: E402
