"""Worker processes a context is handed to: ``start_python_child`` and ``HasPid``.

A token is duplicated *into* a process by its pid (``ExportedContext.for_process``), so
the pid must be the worker's own. On Windows inside a venv, ``sys.executable`` is a
redirector (venvlauncher) that starts the base interpreter as a second process:
``subprocess.Popen([sys.executable, ...]).pid`` names the launcher, and the token would
go there. ``start_python_child`` starts the interpreter itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._checks import ULONG_MAX, integer

if TYPE_CHECKING:
    import subprocess

__all__ = ["HasPid", "start_python_child"]


class HasPid(Protocol):
    """A process object ``for_process`` accepts: anything with an ``int`` ``.pid``.

    ``multiprocessing.Process`` and ``subprocess.Popen`` are two; ``pid`` is ``None``
    for a process that has not started, which ``for_process`` refuses.
    """

    @property
    def pid(self) -> int | None:
        """The process id, or ``None`` before the process has started."""
        ...


def start_python_child(args: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``python args...`` as a child whose ``.pid`` is the interpreter that runs.

    On Windows inside a venv, ``sys.executable`` is a redirector (venvlauncher) that
    starts the base interpreter as a second process, so
    ``subprocess.Popen([sys.executable, ...]).pid`` names the launcher and
    ``for_process(popen)`` would hand the token to it. This starts the base
    interpreter directly with ``__PYVENV_LAUNCHER__`` set to the venv's executable,
    which is what ``multiprocessing`` does (CPython ``popen_spawn_win32.py``,
    bpo-35797): the child still runs in the venv, and its pid is the worker's.
    Elsewhere (and outside a venv) it is ``Popen([sys.executable, *args])``.
    ``popen_kwargs`` go to ``subprocess.Popen`` (``env`` is copied, not changed), but for
    ``shell`` and ``executable``, refused with ``TypeError``: either would make ``.pid``
    another program's (a shell's), which is what this function is there to prevent.
    """
    import subprocess  # here: only the processes that start children pay for the import

    if isinstance(args, (str, bytes)):
        raise TypeError("args must be a sequence of arguments, not one string")
    for name in ("shell", "executable"):
        if name in popen_kwargs:
            raise TypeError(
                f"start_python_child() takes no {name}=: the child is this Python, so that "
                "its .pid is the interpreter's; use subprocess.Popen for another program"
            )
    executable, env = _python_for_children(popen_kwargs.pop("env", None))
    return subprocess.Popen([executable, *args], env=env, **popen_kwargs)


def _python_for_children(
    env: Mapping[str, str] | None,
) -> tuple[str, Mapping[str, str] | None]:
    """The interpreter and environment ``start_python_child`` uses (see there)."""
    executable = sys.executable
    base = getattr(sys, "_base_executable", None) or executable
    if sys.platform == "win32" and os.path.normcase(base) != os.path.normcase(executable):
        env = dict(os.environ if env is None else env)
        env["__PYVENV_LAUNCHER__"] = executable
        return base, env
    return executable, env


def target_pid(process: object) -> int:
    """The pid of ``process`` (a pid, or an object with an int ``.pid``), checked."""
    pid = process if isinstance(process, int) else getattr(process, "pid", None)
    if pid is None and hasattr(process, "pid"):
        raise ValueError("the process has not started: it has no pid yet")
    if isinstance(process, bool) or not isinstance(pid, int):
        raise TypeError(
            "for_process() takes a pid or a process object with a .pid, "
            f"not {type(process).__name__}"
        )
    number = integer(pid, "the pid")
    if not 0 < number <= ULONG_MAX:
        raise ValueError(f"{number} is not a process id")
    return number
