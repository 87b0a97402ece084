"""The one ownership mechanism every handle kind uses (contexts, credentials, tokens).

An owner holds its raw handle in ``_handle`` until it gives it up exactly once: by
``close()`` (released through ``_release``), by ``detach()`` (handed to the caller), by
a consuming export, or by the finalizer (released, with a ``ResourceWarning``).

Every owner has its own lock, and every SSPI call on the handle is made holding it
(``_call``, or ``with owner._lock:`` around ``owner._live()`` and the call): so calls on
one owner are serialized, and ``close()``/``detach()`` wait for a running call and
never pull the handle from under it. The lock is a real ``threading.Lock``, so none of
this relies on the GIL (free-threaded CPython included).

A *pin* keeps the handle alive without holding the lock: impersonation (the thread runs
as the client between two calls) and a handshake step using credentials that other
contexts use at the same time. ``close()`` while pinned takes the handle out at once (no
new call can start) and the last unpin releases it.

An owner is not a value: copying or pickling one would make a second owner of the same
handle, freed twice. Both are refused.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from .errors import check

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CleanupWarning", "Closeable", "OwnedHandle", "report_cleanup"]

H = TypeVar("H")
T = TypeVar("T")


class CleanupWarning(RuntimeWarning):
    """An operation completed, but freeing something afterwards failed.

    Nothing completed is lost: ``result`` holds what the operation produced (for
    ``export_context``, the ``ExportedContext``). Under ``-W error`` (or pytest's
    ``filterwarnings = error``) this warning is raised as an exception instead; catch
    it and take ``result`` from it. ``errors`` holds the cleanup failures.
    """

    result: Any
    errors: tuple[BaseException, ...]


def report_cleanup(result: T, errors: list[BaseException], what: str) -> T:
    """Return ``result`` after warning about the cleanup ``errors`` (if any) of ``what``."""
    if errors:
        details = "; ".join(str(e) for e in errors)
        warning = CleanupWarning(f"{what} completed, but cleaning up after it failed: {details}")
        warning.result = result
        warning.errors = tuple(errors)
        warnings.warn(warning, stacklevel=3)
    return result


class Closeable:
    """``with`` support and ``repr`` for everything this library hands out to be closed."""

    __slots__ = ()

    @property
    def closed(self) -> bool:  # pragma: no cover - abstract
        """``True`` once there is nothing left to close."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        """Release what the object owns. Safe to call again."""
        raise NotImplementedError

    def _describe(self, *, closed: bool) -> str:
        return f"<{type(self).__qualname__} {'closed' if closed else 'open'}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._describe(closed=self.closed)


class OwnedHandle(Closeable, Generic[H]):
    """Base of every object that owns one SSPI or kernel handle."""

    __slots__ = ("__weakref__", "_handle", "_lib", "_lock", "_parked", "_pins")
    _kind = "handle"
    _how_to_move = "detach() gives up the raw handle"
    _handle: H | None
    _lib: Any  # the loaded library the handle came from, and goes back to
    _lock: threading.Lock
    _parked: H | None  # closed while pinned: released by the last unpin
    _pins: int

    def _own(self, lib: Any, handle: H | None) -> None:
        """Set up ownership; every constructor calls this once, before anything can fail."""
        if getattr(self, "_lock", None) is not None:
            raise TypeError(f"this {self._kind} is already set up; make a new object")
        self._lock = threading.Lock()
        self._lib = lib
        self._pins = 0
        self._parked = None
        self._handle = handle

    # What subclasses define -------------------------------------------------------

    def _release(self, handle: H) -> None:  # pragma: no cover - abstract
        """Free ``handle`` (DeleteSecurityContext, CloseHandle...); may raise."""
        raise NotImplementedError

    def _public(self, handle: H) -> Any:  # pragma: no cover - abstract
        """The raw value ``detach()`` returns."""
        raise NotImplementedError

    # Using the handle -------------------------------------------------------------

    def _closed_error(self) -> ValueError:
        return ValueError(f"the {self._kind} is closed; it cannot be used any more")

    def _live(self) -> H:
        """The handle, or the "closed" ``ValueError``. Call it holding ``_lock``."""
        handle = self._handle
        if handle is None:
            raise self._closed_error()
        return handle

    def _call(self, function: str, *args: Any) -> int:
        """``function(&handle, *args)`` holding the lock; the status checked; returned."""
        with self._lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            status: int = getattr(self._lib, function)(handle, *args)  # byref in C
        return check(status, function)

    def _pin(self) -> H:
        """Keep the handle alive until ``_unpin``, without holding the lock."""
        with self._lock:
            handle = self._live()
            self._pins += 1
        return handle

    def _unpin(self) -> None:
        with self._lock:
            self._pins -= 1
            parked = self._parked if not self._pins else None
            if parked is not None:
                self._parked = None
        if parked is not None:
            self._release(parked)

    # Ownership --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """``True`` once ``close()``, ``detach()`` or a consuming export gave the handle up."""
        return self._handle is None

    def close(self) -> None:
        """Release the handle. Safe to call again, and from several threads at once.

        Waits for a call that another thread is making on the handle; a call started
        after ``close()`` raises ``ValueError`` without reaching the provider.
        """
        with self._lock:  # written out here, not in a helper: close() is a hot path
            handle = self._handle
            self._handle = None
            if handle is not None and self._pins:
                self._parked, handle = handle, None
        if handle is not None:
            self._release(handle)

    def detach(self) -> Any:
        """Give up ownership and return the raw handle; the caller must release it."""
        with self._lock:
            handle = self._handle
            if handle is None:
                raise ValueError(f"the {self._kind} is closed; there is no handle to detach")
            if self._pins:
                raise ValueError(
                    f"the {self._kind} is in use (impersonating, or in a handshake step); "
                    "detach it after that ends"
                )
            self._handle = None
        return self._public(handle)

    def _refuse_copy(self, *_: object) -> NoReturn:
        raise TypeError(
            f"a {type(self).__name__} owns its {self._kind} and cannot be copied or "
            f"pickled: a second owner would free it twice. {self._how_to_move}"
        )

    __copy__: Callable[..., NoReturn] = _refuse_copy
    __deepcopy__: Callable[..., NoReturn] = _refuse_copy
    __reduce_ex__: Callable[..., NoReturn] = _refuse_copy

    def __del__(self) -> None:
        # Construction may have failed before _handle was set.
        handle = getattr(self, "_handle", None)
        if handle is None:
            return
        self._handle = None
        message = f"unclosed {self._describe(closed=False)}; close it or use 'with'"
        with contextlib.suppress(Exception):  # nobody to report to at finalization
            self._release(handle)
        # Warn after freeing: under filterwarnings=error the warning raises.
        warnings.warn(message, ResourceWarning, stacklevel=1, source=self)
