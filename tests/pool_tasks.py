"""What the worker-pool tests run in the pool's workers (tests/test_pools.py).

A module of its own, importing no pytest, so that a ``spawn`` or ``forkserver`` worker
imports little to unpickle its tasks. Each task checks the worker's own simulated
provider for leaks before it answers.
"""

from __future__ import annotations

import gc
import os
import warnings
from typing import Any

from sspi_import import ExportedContext, ImportedContext
from sspi_import.testing import FakeSspi, install_fake

installed: FakeSspi | None = None
"""The worker's provider, as ``start`` installed it (``None`` in a worker without one)."""

inherited: Any = None
"""Set in the parent before a ``fork`` pool starts: what its workers inherit."""


def start(machine: str) -> None:
    """The pool initializer: ``install_fake``, the fake kept for the leak checks."""
    global installed
    installed = install_fake(machine=machine)


def _checked(result: Any) -> Any:
    gc.collect()
    if installed is not None:
        installed.assert_no_leaks()
        assert installed.misuses == [], installed.misuses
    return result


def serve(exported: ExportedContext) -> tuple[bytes, bytes, bytes, str | None]:
    """The recipe's worker: import (the token is pulled here), impersonate, answer."""
    with exported, ImportedContext.from_exported(exported) as context:
        with context.impersonate():
            impersonated = None if installed is None else installed.impersonating
        reply = f"{context.user_name} in {os.getpid()}".encode()
        answer = (reply, context.sign(reply), context.encrypt(reply), impersonated)
    return _checked(answer)  # type: ignore[no-any-return]


def serve_bytes(payload: bytes) -> tuple[bytes, bytes, bytes, str | None]:
    """``serve`` for a copy sent as ``to_bytes()``."""
    return serve(ExportedContext.from_bytes(payload))


def receive_only(exported: ExportedContext) -> tuple[bool, str, int, list[str]]:
    """Receive a copy and never use it: nothing pulled, nothing owned, nothing warned."""
    closed, shown = exported.closed, repr(exported)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del exported
        gc.collect()
    pulls = -1 if installed is None else installed.calls("DuplicateHandle")
    return _checked((closed, shown, pulls, [str(w.message) for w in caught]))  # type: ignore[no-any-return]


def serve_as_another_user(exported: ExportedContext) -> None:
    """``serve``, in a worker that may not open the exporter (as if another user's)."""
    kill = os.kill

    def denied(pid: int, signal: int) -> None:
        if pid != os.getpid():
            raise PermissionError(1, "Operation not permitted")
        kill(pid, signal)

    os.kill = denied  # this worker only, and put back below
    try:
        serve(exported)
    finally:
        os.kill = kill
        _checked(None)


def use_inherited() -> str:
    """Use what the worker inherited through fork (refused: it is the parent's)."""
    return str(inherited.user_name)


def pid() -> int:
    """The worker's pid."""
    return os.getpid()
