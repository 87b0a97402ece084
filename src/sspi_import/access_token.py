"""The client's access token: ``AccessToken``, what ``client_token()`` of a context returns.

On Windows a server context holds the access token of the client it authenticated.
``QuerySecurityContextToken`` hands out a new handle to it, which the caller closes with
``CloseHandle``. It is how a worker runs a process as the client (``CreateProcessAsUser``)
or reads the client's groups (``GetTokenInformation``) outside the SSPI calls.

``AccessToken`` owns that handle through the library's one ownership mechanism
(``OwnedHandle``): ``close()`` closes it exactly once, never while another thread borrows
it; the finalizer closes a forgotten one with a ``ResourceWarning``; copying and pickling
are refused (a second owner would close it twice); ``detach()`` hands it to the caller.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ._handle import OwnedHandle

__all__ = ["AccessToken"]


class AccessToken(OwnedHandle[int]):
    """An owned handle to a client's access token, from ``SecurityContextBase.client_token()``.

    ::

        with server_context.client_token() as token:
            win32security.GetTokenInformation(token.value, win32security.TokenGroups)

    ``value`` is the handle for other Windows APIs (pywin32, ctypes), valid while the
    token is open and in this process only. ``close()`` (or leaving the ``with`` block)
    closes it with ``CloseHandle``, once; ``detach()`` gives it up to a caller that closes
    it itself (pywin32's ``win32api.PyHANDLE`` does, when collected). It cannot be copied
    or pickled: to use the client's identity in another process, hand over the context
    (``export_context``), whose import brings the token along.
    """

    _FREE: ClassVar[str] = "CloseHandle"
    _kind: ClassVar[str] = "access token"
    _how_to_move: ClassVar[str] = (
        "It is valid in this process only: hand the context to another process "
        "(export_context) and ask its import for the token there; detach() gives up the "
        "raw handle"
    )
    _package: str | None = None  # for repr: the package of the context it came from

    def __init__(self) -> None:
        raise TypeError("access tokens come from a context's client_token()")

    @classmethod
    def _unfilled(cls, lib: Any, package: str | None) -> AccessToken:
        """An owner set up for ``lib``'s ``CloseHandle``, owning nothing yet (``_place``)."""
        token = cls.__new__(cls)
        token._package = package
        token._own(lib)
        return token

    def _public(self, handle: int) -> int:
        return handle

    @property
    def value(self) -> int:
        """The handle value, for Windows APIs that take a token ``HANDLE``.

        Valid while this token is open, in this process; ``ValueError`` once closed.
        Do not close it yourself: ``detach()`` first if something else will.
        """
        handle = self._handle
        if handle is None:
            raise self._closed_error()
        return handle

    def detach(self) -> int:
        """Give up the token and return its handle; the caller must close it (``CloseHandle``)."""
        value: int = super().detach()
        return value

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<AccessToken package={self._package!r} {state}>"
