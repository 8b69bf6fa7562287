"""Dask engine: the same `process_batch` over the workers of a Dask cluster.

Without a scheduler address it starts a LocalCluster on this machine (one single-threaded
worker process per core) and closes it afterwards; with one it connects to an existing
cluster. Either way this process (the client) discovers the inputs, submits batches with a
bounded number in flight, and merges and writes the dataset; workers read, hash and process
posts. On the own LocalCluster workers put shards straight into the build cache; on an
existing cluster (the build passes no store) they return shard bytes and the client stores
them. Workers must therefore be able to read the input: local paths work on a LocalCluster
or a cluster sharing the filesystem, otherwise use an fsspec URL (s3://, gs://, …) every
worker can reach. The engine checks this on the first batch and fails fast.

All dask imports live here so the local engine never imports dask.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.batches import Batch, BatchSettings, code_fingerprint, process_batch
from pipeline.errors import BuildError

# Batches in flight per worker thread: enough to keep workers busy while results stream back,
# few enough that memory stays bounded on both the client and the workers.
IN_FLIGHT_PER_THREAD = 2
# Giving up on the first connection to a --scheduler: a healthy scheduler answers in well under a
# second (TLS and a WAN included), and distributed retries a refused connection until this runs
# out, so it is how long a typo in the port or a stopped scheduler takes to report.
CONNECT_TIMEOUT = "2s"
# The client's own timeout once connected (its connections to the scheduler and workers, the
# window to reconnect): longer, so a busy cluster is not mistaken for a lost one.
CLIENT_TIMEOUT = "10s"


def _default_workers() -> int:
    from pipeline.engines.local import default_workers

    return default_workers()


def _connect(workers: int, scheduler: str | None) -> tuple[Any, Any]:
    """(client, cluster or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise BuildError("--engine dask needs dask.distributed: pip install 'dask[distributed]'") from exc
    if scheduler:
        _check_address(scheduler)
        try:
            client = _closing_client(Client, CONNECT_TIMEOUT)(scheduler, timeout=CLIENT_TIMEOUT,
                                                               set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BuildError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
        return client, None
    cluster = LocalCluster(n_workers=workers or _default_workers(), threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    try:
        client = _closing_client(Client)(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


def _check_address(address: str) -> None:
    """A malformed address is refused before any Client exists, by distributed's own parser (the
    one its connect uses): 'localhost' lacks the port, 'foo://…' names no transport."""
    from distributed.comm import get_address_host_port, parse_address

    try:
        if parse_address(address)[0] != "inproc":  # in-process addresses have no host and port
            port = get_address_host_port(address)[1]
            if not 0 < port < 65536:
                raise ValueError(f"port {port} out of range")
    except (TypeError, ValueError) as exc:
        raise BuildError(f"not a Dask scheduler address: {address!r} ({exc}); give one like "
                         "tcp://host:8786") from exc


def _closing_client(client_class: type, connect_timeout: str | None = None) -> type:
    """`client_class` (distributed.Client) made to clean up when its constructor fails.

    Client starts an IO-loop thread and connects inside __init__. When that fails with anything
    but OSError the half-built client is left 'connecting', and only its __del__ closes it, at
    interpreter exit, when the loop thread can no longer run: a hang of twice the timeout, then
    "Exception ignored in Client.__del__ … TimeoutError". After an OSError it closes its
    connections but leaves the loop thread running. This subclass closes both before the error
    propagates. With connect_timeout the first connection gives up after that instead of the
    client's timeout (which then serves its later connections)."""

    class ClosingClient(client_class):  # type: ignore[misc, valid-type]
        def start(self, **kwargs: Any) -> None:
            if connect_timeout is not None:
                kwargs["timeout"] = connect_timeout
            try:
                super().start(**kwargs)
            except BaseException:
                with contextlib.suppress(Exception):  # the connect error is the one to report
                    self.close(timeout=5)  # returns at once if the failed start closed it already
                self._loop_runner.stop()  # no-op when close() stopped it
                raise

    return ClosingClient


def _check_same_code(client: Any) -> None:
    """Workers running other pipeline code would write other results (and poison the cache,
    which is keyed by the client's code fingerprint): refuse."""
    mine = code_fingerprint()
    theirs = client.run(code_fingerprint)
    odd = sorted((w, fp) for w, fp in theirs.items() if fp != mine)
    if odd:
        raise BuildError(f"{len(odd)} of {len(theirs)} Dask worker(s) run different pipeline code than this "
                         f"client (code fingerprint {odd[0][1]} on {odd[0][0]}, here {mine}): install the "
                         "same version of the package on the workers")


def _probe_locator(locator: tuple[Any, ...]) -> bool:
    """Runs on each worker: can this worker read the item?"""
    kind = locator[0]
    if kind in ("file", "zip"):
        return os.access(locator[1], os.R_OK)
    if kind == "fsspec":
        import fsspec

        fs, path = fsspec.core.url_to_fs(locator[1])
        return bool(fs.exists(path))
    return True  # bytes and error locators carry everything with them


def _check_workers_can_read(client: Any, batch: Batch) -> bool:
    """Fail fast, before every post ends as an 'unreadable' reject, when workers cannot see
    the input (a local path on a remote cluster, a memory:// URL, …). False when the batch
    held nothing to probe."""
    for item in batch.items:
        kind = item.locator[0]
        if kind not in ("file", "zip", "fsspec"):
            continue
        if kind == "fsspec" and str(item.locator[1]).startswith("memory://"):
            raise BuildError("memory:// inputs live in one process and Dask workers cannot read them: "
                             "use --engine local, or an fsspec URL the workers can reach")
        results = client.run(_probe_locator, item.locator)
        blind = sorted(w for w, ok in results.items() if not ok)
        if blind:
            where = item.locator[1]
            raise BuildError(f"{len(blind)} of {len(results)} Dask worker(s) cannot read the input "
                             f"({where}; e.g. worker {blind[0]}): on a remote cluster give --input as a path "
                             "on a filesystem shared with the workers, or an fsspec URL (s3://…) they can reach")
        return True
    return False


def run_dask(batches: Iterable[Batch], settings: BatchSettings, workers: int,
             scheduler: str | None) -> Iterator[tuple[bytes | None, dict[str, Any]]]:
    """Yield (shard bytes, meta) per batch, in completion order, with at most
    IN_FLIGHT_PER_THREAD x (worker threads) batches in flight."""
    from distributed import as_completed

    client, cluster = _connect(workers, scheduler)
    try:
        threads = sum(client.nthreads().values())
        if threads == 0:
            client.wait_for_workers(1, timeout=60)
            threads = sum(client.nthreads().values())
        window = max(2, IN_FLIGHT_PER_THREAD * threads)
        _check_same_code(client)
        pending = as_completed(loop=client.loop)
        checked = False
        for batch in batches:
            if not checked:
                checked = _check_workers_can_read(client, batch)
            # Deterministic key (batch identity + settings): readable on the dashboard, and two
            # builds submitting the same work to one cluster at once share a result only when
            # it is the same result.
            task_key = _task_key(batch, settings)
            pending.add(client.submit(process_batch, batch, settings, key=task_key,
                                      retries=1))
            while pending.count() >= window:
                yield _take(next(pending))
        for fut in pending:
            yield _take(fut)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _task_key(batch: Batch, settings: BatchSettings) -> str:
    """Batches without a signature key (fsspec inputs) are named by their paths instead."""
    import hashlib

    h = hashlib.sha256(repr(settings).encode("utf-8", "replace"))
    if batch.key:
        h.update(batch.key.encode())
    else:
        for item in batch.items:
            h.update(item.source_path.encode("utf-8", "surrogatepass") + b"\0")
    return f"process_batch-{h.hexdigest()[:32]}"


def _take(fut: Any) -> tuple[bytes | None, dict[str, Any]]:
    result = fut.result()
    fut.release()
    return result
