"""Process hardening the sidecar applies to itself at start.

Not dumpable (prctl PR_SET_DUMPABLE 0): in a pod with `shareProcessNamespace: true`, an app container
running as the sidecar's uid (65532 is distroless's `nonroot`, a common choice) passes the kernel's
ptrace access check against a dumpable sidecar, and could read its memory (the credentials it holds)
and its root file system through /proc/<pid>/root (the mounted private key). A process that is not
dumpable needs CAP_SYS_PTRACE for that, which no container gets by default. The kernel resets the flag
on execve, so every sidecar process sets it for itself; the `check` probe reads no secret and skips it.
Best effort: where prctl is missing (not Linux) the sidecar runs on, and says so in its log.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

from .logs import get_logger

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4

log = get_logger("main")


def _libc_prctl() -> Callable[..., int]:
    return ctypes.CDLL(None, use_errno=True).prctl


def make_undumpable(prctl: Callable[[], Callable[..., int]] = _libc_prctl) -> bool:
    """Set PR_SET_DUMPABLE to 0; True when it took effect, False (logged) when it could not be set."""
    if not sys.platform.startswith("linux"):
        log.warning("not marking the process undumpable: prctl exists on Linux only", extra={"platform": sys.platform})
        return False
    try:
        call = prctl()
        result = call(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError) as error:
        log.warning("could not mark the process undumpable: %s", error)
        return False
    if result != 0:
        log.warning("could not mark the process undumpable: prctl failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def is_dumpable(prctl: Callable[[], Callable[..., int]] = _libc_prctl) -> bool:
    return prctl()(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1
