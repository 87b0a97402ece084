"""The one ownership mechanism every handle kind uses (contexts, credentials, tokens).

An owner holds its raw handle in ``_handle`` until it gives it up exactly once: by
``close()`` (released through ``_release``), by ``detach()`` (handed to the caller), or
by the finalizer (released, with a ``ResourceWarning``). Taking the handle out is the
only step done under the lock, so two threads closing at once release it once, and
the lock is one module-wide lock: nothing is allocated per handle for it.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Closeable", "OwnedHandle"]

H = TypeVar("H")

_LOCK = threading.Lock()


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

    __slots__ = ("__weakref__", "_handle", "_lib")
    _kind = "handle"
    _handle: H | None
    _lib: Any  # the loaded library the handle came from, and goes back to

    # What subclasses define -------------------------------------------------------

    def _release(self, handle: H) -> None:  # pragma: no cover - abstract
        """Free ``handle`` (DeleteSecurityContext, CloseHandle...); may raise."""
        raise NotImplementedError

    def _public(self, handle: H) -> Any:  # pragma: no cover - abstract
        """The raw value ``detach()`` returns."""
        raise NotImplementedError

    # Ownership --------------------------------------------------------------------

    def _take(self) -> H | None:
        with _LOCK:
            handle = self._handle
            self._handle = None
        return handle

    def _live(self) -> H:
        """The handle, or ``ValueError`` if this object no longer owns one."""
        handle = self._handle
        if handle is None:
            raise ValueError(f"the {self._kind} is closed; it cannot be used any more")
        return handle

    @property
    def closed(self) -> bool:
        """``True`` once ``close()``, ``detach()`` or a consuming export gave the handle up."""
        return self._handle is None

    def close(self) -> None:
        """Release the handle. Safe to call again, and from several threads at once."""
        handle = self._take()
        if handle is not None:
            self._release(handle)

    def detach(self) -> Any:
        """Give up ownership and return the raw handle; the caller must release it."""
        handle = self._take()
        if handle is None:
            raise ValueError(f"the {self._kind} is closed; there is no handle to detach")
        return self._public(handle)

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
