"""The processes a build forks (local workers, the figure process) end when the build does."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to kill this forked process as soon as its parent `parent_pid` dies.

    A build killed with SIGKILL otherwise left its workers and figure process behind for good:
    each waits on a pipe whose other end the others still hold open. Killing is safe: shards and
    datasets are only ever published by renames. Elsewhere than Linux this does nothing."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl (not Linux)
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request was made: it will not fire
        os._exit(1)
