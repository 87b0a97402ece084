"""The one ownership mechanism every handle kind uses (contexts, credentials, tokens).

An owner holds its raw handle in ``_handle`` until it gives it up exactly once: by
``close()`` (freed with the function the class names in ``_FREE``), by ``detach()``
(handed to the caller), by a consuming call (``_consume``: an export with
``DELETE_OLD``), or by the finalizer (freed, with a ``ResourceWarning``). Nothing outside
this module writes an owner's state or takes its lock (``tests/test_handle.py`` fences
it); other modules call what is offered here:

- ``_own(lib, handle, function, *args)``: set up ownership, and make the call that
  writes a new handle (import, acquire), placed in the owner *before* the call;
- ``_call(function, *args)``, ``_call_bare(fn, function, a, b, c, fill, fields, read, scratch)``
  (a message call: its descriptor filled and read back under the lock),
  ``_call_in(function, prepare)``: a call on the handle, holding the owner's lock;
- ``_consume(function, *args)``: a call that deletes the handle when it succeeds;
- ``_pin()``: borrow the handle without the lock (a token during an import, credentials
  during a handshake step, a context while a thread impersonates its client);
  ``_call_pinned(pin, function)``: the call that ends what the pin was taken for (the
  revert of an impersonation), made even if the owner was closed meanwhile.

The rules that make it hold, in one place:

- Every call on the handle is made holding the owner's lock, taken with ``with`` (no gap
  for an interrupt between taking it and the ``try`` that releases it). It is an
  ``RLock``: a finalizer that releases a pin or reverts an impersonation may run (the
  garbage collector runs in any allocation) on a thread that holds that very lock.
  So calls on one owner are serialized, and ``close()``/``detach()`` wait for a running
  call and never pull the handle from under it; nothing relies on the GIL. A message
  call nested that way in another (``_busy``) puts back the descriptor they share.
- No user code runs while the lock is held: statuses are checked (and so logged, where
  a logging handler may read the context) after it is released. Every helper ends with
  ``errors.check``'s one shortcut (``SEC_E_OK`` of a status function, with no DEBUG
  logging, returned without the call), written out where the status is known: one test
  costs less than the Python call it saves.
- Interrupts (``KeyboardInterrupt``, an asynchronous exception) arrive where CPython can
  deliver them: at a function's entry, after every call returns, at a loop's jump back.
  So a handle is always taken out of the owner *before* the call that frees or consumes
  it, on the same line with nothing that can be interrupted between (an interrupt after
  the call then finds nothing to free twice); a new handle is in the owner *before* the
  call that writes it (an interrupt after the call leaves it to the finalizer, which
  frees it only if the call wrote it); a pin is a ``Pin`` object whose finalizer
  releases it if an interrupt skipped ``release()``.
- A *pin* keeps the handle alive without holding the lock. ``close()`` while pinned takes
  the handle out at once (no new call can start) and the last pin's release frees it;
  the finalizer leaves a pinned handle to its pins too (an impersonation is reverted
  before its context is deleted).
- After ``os.fork()``, an owner made before the fork belongs to the parent: in the child
  every call on it raises ``InheritedHandleError``, and ``close()`` and a pin's release
  only forget it, with no lock taken (a parent thread may have held it at the fork) and
  nothing freed (the provider state may be shared with the parent).
- An owner is not a value: copying or pickling one would make a second owner of the
  same handle, freed twice. Both are refused.
"""

from __future__ import annotations

import os
import warnings
from _thread import RLock as _RLock  # threading.RLock is a Python function around it
from collections.abc import Callable
from ctypes import addressof, byref, memmove
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, TypeVar

from . import _log
from ._log import DEBUG
from ._raw.functions import PROTOTYPES
from .errors import CHECKS, STATUS_FUNCTIONS, InheritedHandleError
from .library import api

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Closeable", "OwnedHandle", "Pin"]

H = TypeVar("H")
_R = TypeVar("_R")

_generation = 0
"""Bumped in a fork child: an owner whose ``_generation`` differs was made in the parent."""


def _forked() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forked)


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


class Pin:
    """A borrowed handle kept alive: ``release()`` it once (its finalizer does, if skipped)."""

    _owner: OwnedHandle[Any] | None = None  # a class default: Pin() runs no Python code

    def release(self) -> None:
        """Give the pin back; the last one frees a handle closed meanwhile. Idempotent."""
        owner = self._owner
        if owner is not None:
            owner._unpin(self)

    def __del__(self) -> None:
        self.release()  # an interrupt skipped the holder's release()


class OwnedHandle(Closeable, Generic[H]):
    """Base of every object that owns one SSPI or kernel handle.

    The ownership state lives in the instance ``__dict__`` with these class defaults, so
    a fresh object reads as "not set up, no handle" without an ``AttributeError`` to
    raise and catch (the price of a slot read before ``_own``).
    """

    _FREE: ClassVar[str]  # the function that frees the handle: DeleteSecurityContext...
    _kind: ClassVar[str] = "handle"
    _how_to_move: ClassVar[str] = "detach() gives up the raw handle"

    _handle: H | None = None
    _lock: _RLock | None = None  # None: _own has not run
    _lib: Any = None  # the library the handle came from, and goes back to
    _free: Any = None  # _lib's _FREE function, bound when _lib is
    _ref: Any = None  # byref(_handle), made on the first _call_bare
    _pins = 0
    _parked: H | None = None  # closed while pinned: freed by the last release
    _pending = False  # True while a creating call has not confirmed the handle
    _busy = False  # True from a _call_bare's fill to its read: its scratch is in use
    _generation = 0

    # What subclasses define -------------------------------------------------------

    def _public(self, handle: H) -> Any:  # pragma: no cover - abstract
        """The raw value ``detach()`` returns."""
        raise NotImplementedError

    def _written(self, handle: H) -> bool:
        """Whether a creating call wrote ``handle`` (asked only after an interrupt)."""
        return bool(handle)

    _RELEASES: ClassVar[bool] = False  # True where _released does something

    def _released(self) -> None:
        """After the handle was freed (or consumed): release what goes with it.

        Called only where the class sets ``_RELEASES`` (every free pays for the test, not
        for a call that does nothing).
        """

    # Setting up -------------------------------------------------------------------

    def _own(
        self, lib: Any, handle: H | None = None, function: str | None = None, *args: Any
    ) -> int:
        """Set up ownership, once, before anything can fail; the one way an owner is made.

        ``lib`` is the library the handle belongs to (``None``: bound on first use, for a
        token received from another process). ``handle``, if given, is owned from here:
        one the caller already has (adopted, restored), or, with ``function``, the one
        that call writes (``function(*args)``, ``handle`` among ``args``: an import, an
        acquisition). Then it is owned from *before* the call, so that if an interrupt
        lands after it the finalizer frees what the call wrote; a failed call leaves the
        owner without a handle. Returns the call's checked status (0 without one). For an
        owner nobody else can see yet: its constructor.
        """
        if self._lock is not None:
            raise TypeError(f"this {self._kind} is already set up; make a new object")
        fn = None if function is None else getattr(lib, function)
        name = function or ""
        self._lock = _RLock()
        self._generation = _generation
        if lib is not None:
            self._free = getattr(lib, self._FREE)  # SspiUnavailableError now, not at close
            self._lib = lib
        if fn is None:
            self._handle = handle
            return 0
        self._pending = True
        self._handle = handle
        status = fn(*args)
        if status < 0:
            self._handle = None
        self._pending = False
        if status or name not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            # Reported as the function called (a bare binding's is the declared one's).
            return CHECKS[name](status, PROTOTYPES[name].symbol)
        return 0

    def _place(self, handle: H) -> None:
        """Own ``handle``, which a call wrote into a variable, in an owner ``_own(lib)`` set up.

        For a call whose out-parameter is not the handle object itself (a token handle
        written into a ``c_void_p``): the owner exists before the call, and takes the
        value right after it.
        """
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            if self._handle is not None:
                raise TypeError(f"this {self._kind} already owns a handle")
            self._handle = handle

    def _library(self) -> Any:
        """The owner's library, the current one bound now if it had none (a received token).

        Read as ``self._lib or self._library()``: the call only where there is none yet.
        """
        lib = self._lib
        if lib is None:
            lib = api()
            free = getattr(lib, self._FREE)
            lock = self._lock
            if lock is None or self._generation != _generation:
                raise self._unusable()
            with lock:
                if self._lib is None:
                    self._free = free
                    self._lib = lib
                lib = self._lib
        return lib

    # Calls on the handle --------------------------------------------------------------

    def _inherited_error(self) -> InheritedHandleError:
        return InheritedHandleError(
            f"this {self._kind} was made before os.fork() and belongs to the parent process: "
            "using it here would share its state with the parent (a message protected in "
            "both processes reuses one keystream). Export it and import the export in "
            "this process instead (export_context, ExportedContext.for_process)"
        )

    def _closed_error(self) -> ValueError:
        return ValueError(f"the {self._kind} is closed; it cannot be used any more")

    def _unusable(self) -> Exception:
        """What a call raises on an owner without a lock to take, or inherited through fork."""
        if self._generation != _generation:
            return self._inherited_error()
        return self._closed_error()

    def _check_usable(self) -> None:
        """Raise what a call would (inherited through fork, closed), without making one.

        For what is answered without a call (a cached ``sizes()``, a token's value put in
        a payload): refused in a fork child and once closed, like every call.
        """
        if self._generation != _generation:
            raise self._inherited_error()
        if self._handle is None:
            raise self._closed_error()

    def _call(self, function: str, *args: Any) -> int:
        """``function(handle, *args)`` holding the lock; the result checked after it."""
        fn = getattr(self._lib or self._library(), function)
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            status = fn(handle, *args)
        if status or function not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            return CHECKS[function](status, function)
        return 0

    def _call_bare(
        self,
        fn: Any,
        function: str,
        a: Any,
        b: Any,
        c: Any,
        fill: Callable[..., None],
        fields: tuple[int, ...],
        read: Callable[[], _R],
        scratch: Any,
    ) -> _R:
        """``fill(*fields)``, ``fn(&handle, a, b, c)``, ``read()``, all holding the lock.

        For the message calls, through a bare binding (``_raw.functions._bare``: ``fn``
        converts nothing; ``byref(handle)`` is made once per owner and kept). ``fill``
        writes the call's descriptor, ``scratch`` (a ctypes object), and ``read`` reads
        it back (what the provider left); neither runs user code (a prepared
        descriptor's are C functions). So one descriptor per owner serves every call:
        the lock serializes the calls of other threads. A call nested on the same
        thread, in a finalizer or a signal handler run between the outer call's
        ``fill`` and ``read``, finds the owner busy and puts back the outer call's
        buffers when it is done. Returns what ``read`` returned; the status is checked
        after the lock is released, and a failure raises instead.
        """
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            ref = self._ref
            if ref is None:
                ref = self._ref = byref(handle)  # type: ignore[arg-type]
            outer = bytes(scratch) if self._busy else None  # what a nested call puts back
            self._busy = True
            try:
                fill(*fields)
                status = fn(ref, a, b, c)
                result = read()
            finally:
                if outer is None:
                    self._busy = False
                else:
                    memmove(addressof(scratch), outer, len(outer))
        if status or function not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            CHECKS[function](status, function)
        return result

    def _call_in(
        self,
        function: str,
        prepare: Callable[[H | None], tuple[tuple[Any, ...], H | None]],
    ) -> int:
        """A call whose arguments depend on the owner's state (a handshake step).

        Holding the lock, ``prepare(handle)`` (``None`` before the first call) checks the
        caller's own state, may update it, and returns ``(arguments, new)``: ``new`` is a
        handle the call creates (a handshake's first call), owned from before the call
        and kept only if it succeeds. ``prepare`` must not run user code. The result is
        checked after the lock is released.
        """
        fn = getattr(self._lib or self._library(), function)
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            arguments, new = prepare(self._handle)
            if new is None:
                status = fn(*arguments)
            else:
                self._pending = True
                self._handle = new
                status = fn(*arguments)
                if status < 0:
                    self._handle = None
                self._pending = False
        if status or function not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            return CHECKS[function](status, function)
        return 0

    def _consume(self, function: str, *args: Any) -> int:
        """``function(handle, *args)`` that deletes the handle when it succeeds.

        The handle is taken out before the call and put back only if the call failed, so
        an interrupt after a successful call cannot lead to a second delete. Refused
        while pinned: the pin holders still need the handle.
        """
        fn = getattr(self._lib or self._library(), function)
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            if self._pins:
                raise ValueError(
                    f"the {self._kind} is in use (impersonating, or in a handshake step); "
                    "it cannot be consumed until that ends"
                )
            # Taken out and called on one line: no interrupt between (module docstring).
            self._handle = None; status = fn(handle, *args)  # noqa: E702  # fmt: skip
            if status < 0:
                self._handle = handle  # not consumed: still ours
        if status or function not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            return CHECKS[function](status, function)
        return 0

    def _consumed(self) -> None:
        """After a successful ``_consume``: release what went with the handle."""
        if self._RELEASES:
            self._released()

    # Pins -------------------------------------------------------------------------

    def _pin(self) -> tuple[H, Pin]:
        """Borrow the handle without the lock until the ``Pin`` is released."""
        pin = Pin()
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle
            if handle is None:
                raise self._closed_error()
            # Counted and given to the Pin on one line: its finalizer releases it.
            self._pins += 1; pin._owner = self  # noqa: E702  # fmt: skip
        return handle, pin

    def _call_pinned(self, pin: Pin, function: str, *args: Any) -> int:
        """``function(handle, *args)`` on the handle ``pin`` keeps alive, holding the lock.

        For the call that ends what the pin was taken for (reverting an impersonation):
        it reaches the provider also after ``close()`` or the finalizer took the handle
        out of the owner (parked: freed by the last pin's release, after this call),
        where ``_call`` would refuse a closed owner. The result is checked after the lock.
        """
        fn = getattr(self._lib or self._library(), function)
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle if self._handle is not None else self._parked
            if pin._owner is not self or handle is None:
                raise self._closed_error()  # released: the handle may be freed
            status = fn(handle, *args)
        if status or function not in STATUS_FUNCTIONS or _log.levels.get(DEBUG, True):
            return CHECKS[function](status, function)
        return 0

    def _unpin(self, pin: Pin) -> None:
        if self._generation != _generation:
            # The parent's (fork): dropped without the lock, which a parent thread may have
            # held at the fork, and nothing freed (close() here freed nothing either).
            pin._owner = None
            return
        status = None
        with self._lock:  # type: ignore[union-attr]  # pinned, so set up
            if pin._owner is not self:
                return
            pin._owner = None; self._pins -= 1  # noqa: E702  # fmt: skip
            parked = self._parked
            if parked is None or self._pins:
                return
            self._parked = None; status = self._free(parked)  # noqa: E702  # fmt: skip
        self._after_free(status)

    # Ownership --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """``True`` once ``close()``, ``detach()`` or a consuming call gave the handle up."""
        return self._handle is None

    def close(self) -> None:
        """Release the handle. Safe to call again, and from several threads at once.

        Waits for a call that another thread is making on the handle; a call started
        after ``close()`` raises ``ValueError`` without reaching the provider.
        """
        if self._generation != _generation:
            self._handle = None  # the parent's: forgotten here, never freed, no lock taken
            return
        lock = self._lock
        if lock is None:
            return  # never set up: nothing owned
        if self._free is None and self._handle is not None:
            self._library()  # a received token binds its library on first use
        with lock:
            handle = self._handle
            if handle is None:
                return
            if self._pins:
                # The last pin's release frees it.
                self._parked = handle; self._handle = None  # noqa: E702  # fmt: skip
                return
            if self._pending and not self._written(handle):
                self._handle = None  # a creating call was interrupted before writing it
                return
            # Taken out and freed on one line: no interrupt between (module docstring).
            self._handle = None; status = self._free(handle)  # noqa: E702  # fmt: skip
        if (
            status
            or self._RELEASES
            or self._FREE not in STATUS_FUNCTIONS
            or _log.levels.get(DEBUG, True)
        ):
            self._after_free(status)  # else errors.check's one shortcut: nothing to do

    def _after_free(self, status: int) -> None:
        """Check the freeing call's status (outside the lock), then release what went with it."""
        if not self._RELEASES:
            CHECKS[self._FREE](status, self._FREE)
            return
        try:
            CHECKS[self._FREE](status, self._FREE)
        finally:
            self._released()

    def detach(self) -> Any:
        """Give up ownership and return the raw handle; the caller must release it."""
        lock = self._lock
        if lock is None or self._generation != _generation:
            raise self._unusable()
        with lock:
            handle = self._handle
            if handle is None:
                raise ValueError(f"the {self._kind} is closed; there is no handle to detach")
            if self._pins:
                raise ValueError(
                    f"the {self._kind} is in use (impersonating, or in a handshake step); "
                    "detach it after that ends"
                )
            public = self._public(handle)
            self._handle = None
        return public

    def _refuse_copy(self, *_: object) -> NoReturn:
        raise TypeError(
            f"a {type(self).__name__} owns its {self._kind} and cannot be copied or "
            f"pickled: a second owner would free it twice. {self._how_to_move}"
        )

    __copy__: Callable[..., NoReturn] = _refuse_copy
    __deepcopy__: Callable[..., NoReturn] = _refuse_copy
    __reduce_ex__: Callable[..., NoReturn] = _refuse_copy

    def __del__(self) -> None:
        handle = self._handle
        if handle is None or self._generation != _generation:
            return  # nothing owned, or the parent's (fork): never freed here
        if self._pins:  # in use by a pin (an impersonation): its release frees it
            self._parked = handle
            self._handle = None
            return
        self._handle = None
        if self._pending and not self._written(handle):
            return  # a creating call was interrupted before it wrote the handle
        message = f"unclosed {self._describe(closed=False)}; close it or use 'with'"
        try:
            if self._free is None:
                self._library()  # a received token binds its library on first use
            self._after_free(self._free(handle))
        except Exception:  # noqa: S110 - nobody to report to at finalization
            pass
        # Warn after freeing: under filterwarnings=error the warning raises.
        warnings.warn(message, ResourceWarning, stacklevel=1, source=self)
