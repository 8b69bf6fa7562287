"""Local engine: batches over a pool of processes on this machine."""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from pipeline.batches import Batch, BatchSettings, process_batch, skip_pandas_probe
from pipeline.children import die_with_parent


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _start_worker(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    skip_pandas_probe()
    # No automatic cyclic garbage collection in a worker: its passes cost about 8 % of a worker's
    # CPU (they walk every young object, and the modules inherited from the driver on the older
    # passes), yet a worker makes no reference cycles (none over the whole corpus). Each batch
    # ends with a collection of the young generations instead, which stays cheap and still
    # frees any cycle a batch may make.
    gc.disable()


def _process_in_worker(batch: Batch, settings: BatchSettings) -> tuple[bytes | None, dict[str, Any]]:
    try:
        return process_batch(batch, settings)
    finally:
        gc.collect(1)


def run_local(batches: Iterable[Batch], settings: BatchSettings,
              workers: int) -> Iterator[tuple[bytes | None, dict[str, Any]]]:
    """Yield (shard bytes, meta) per batch, in completion order, with at most 2 x workers
    batches in flight so memory stays bounded."""
    if workers <= 1:
        for batch in batches:
            yield process_batch(batch, settings)
        return
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                             initargs=(os.getpid(),)) as pool:
        pending: set[Future] = set()
        for batch in batches:
            pending.add(pool.submit(_process_in_worker, batch, settings))
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        for fut in pending:
            yield fut.result()
