"""What every security context can do, established, imported or adopted.

``SecurityContextBase`` owns a ``CtxtHandle`` (``OwnedHandle``: one owner, one lock held
for every call, copies refused) and holds the operations every context has: the
attribute queries (``QueryContextAttributesW``: user and package names, sizes,
lifespan, session key, flags), impersonation (``Impersonation``), the client's access
token (``client_token()``, an ``AccessToken``), message protection (``messages``) and
``export()``. Every buffer SSPI allocates for an attribute is freed
with ``FreeContextBuffer`` in ``finally``, also when an interrupt lands right after the
query returned it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import threading
import weakref
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ._buffers import read_utf16z
from ._filetime import filetime_to_datetime
from ._handle import Pin
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.status_codes import SEC_E_INTERNAL_ERROR
from ._raw.structs import (
    SecHandle,
    SecPkgContext_Flags,
    SecPkgContext_Lifespan,
    SecPkgContext_NamesW,
    SecPkgContext_NegotiationInfoW,
    SecPkgContext_PackageInfoW,
    SecPkgContext_SessionKey,
    SecPkgContext_Sizes,
)
from .access_token import AccessToken
from .errors import InternalError, SspiError, SspiUnavailableError
from .exported import export_context
from .library import call
from .messages import MessageProtection

if TYPE_CHECKING:
    from types import TracebackType

    from .exported import ExportedContext

__all__ = ["ContextSizes", "Impersonation", "SecurityContextBase"]

_ALL_ONES = (1 << (8 * ctypes.sizeof(c_void_p))) - 1


class ContextSizes(NamedTuple):
    """``SECPKG_ATTR_SIZES`` of a context, in bytes: an immutable named tuple."""

    max_token: int
    """Largest token the handshake can produce."""
    max_signature: int
    """Largest signature ``sign`` returns (0: the context cannot sign)."""
    block_size: int
    """Messages are padded to a multiple of this (0 or 1: no padding)."""
    security_trailer: int
    """Largest trailer ``encrypt`` adds (0: the context cannot encrypt)."""


class SecurityContextBase(MessageProtection):
    """What every context of this library shares: an owned ``CtxtHandle`` and its uses.

    ``user_name``, ``package_name``, ``sizes()``, ``lifespan``, ``session_key()``,
    ``flags``, ``sign``/``verify``, ``encrypt``/``decrypt`` (and their in-place forms),
    ``wrap``/``unwrap``, ``wrap_iov``/``unwrap_iov``, ``impersonate()``, ``client_token()``
    and ``export()``.

    Calls on one context are serialized: each holds the context's lock for the SSPI
    call, because the message functions keep per-context state (NTLM's RC4 stream and
    sequence numbers) and providers are not safe for concurrent calls on one context.
    ``close()`` deletes the context (``DeleteSecurityContext``) exactly once, after any
    call another thread is making on it; calls after it raise ``ValueError``.
    ``detach()`` returns the raw ``(dwLower, dwUpper)`` pair and gives up ownership.
    A context cannot be copied or pickled: ``export()`` it to move it to another process.
    """

    _FREE: ClassVar[str] = "DeleteSecurityContext"
    _kind: ClassVar[str] = "security context"
    _how_to_move: ClassVar[str] = (
        "To move a context to another process, export() it and import the export there; "
        "detach() gives up the raw (dwLower, dwUpper) pair"
    )

    @property
    def package(self) -> str | None:
        """The security package the context belongs to, when known."""
        return None

    def _public(self, handle: SecHandle) -> tuple[int, int]:
        return (handle.dwLower, handle.dwUpper)

    def _written(self, handle: SecHandle) -> bool:
        # Made zeroed; SecIsValidHandle (sspi.h) calls a word of all ones invalid.
        lower, upper = handle.dwLower, handle.dwUpper
        return bool(lower or upper) and _ALL_ONES not in (lower, upper)

    def export(self, flags: int = 0) -> ExportedContext:
        """Serialize this context for another process (``ExportSecurityContext``).

        ``flags`` is ``ExportFlags``: ``NONE`` (a copy; this context stays usable),
        ``RESET_NEW`` or ``DELETE_OLD`` (SSPI deletes this context: it is marked closed
        and never deleted again, also if an interrupt lands right after the call).
        ``export_context(context, flags)`` is the same call; see it for the details.
        """
        return export_context(self, flags)

    def _free_buffer(self, pointer: Any) -> None:
        call(self._lib, "FreeContextBuffer", pointer)

    # Attributes -------------------------------------------------------------------

    def _query(self, attribute: int, out: ctypes.Structure) -> None:
        self._call("QueryContextAttributesW", attribute, byref(out))

    def _query_buffer(self, attribute: int, out: ctypes.Structure, field: str) -> Any:
        """A query whose answer holds a buffer SSPI allocated (``out.<field>``).

        Returns the pointer, for the caller to read and free in ``finally``. If the call
        raises after writing it (an interrupt right after it returned), it is freed here.
        """
        try:
            self._query(attribute, out)
        except BaseException:
            pointer = getattr(out, field)
            if pointer:
                self._free_buffer(pointer)
            raise
        return getattr(out, field)

    @property
    def user_name(self) -> str:
        r"""The authenticated user, as the package names it (NTLM: ``DOMAIN\user``)."""
        names = SecPkgContext_NamesW()
        pointer = self._query_buffer(C.SECPKG_ATTR_NAMES, names, "sUserName")
        try:
            return read_utf16z(pointer) if pointer else ""
        finally:
            if pointer:
                self._free_buffer(pointer)

    @property
    def package_name(self) -> str:
        """The package the provider says the context uses; for Negotiate, the one it chose.

        Negotiate contexts are asked for ``SECPKG_ATTR_NEGOTIATION_INFO`` first, falling
        back to ``SECPKG_ATTR_PACKAGE_INFO``; the name to import an export with is this.
        """
        known = self.package
        if known is not None and known.lower() == "negotiate":
            try:
                return self._negotiated_package()
            except SspiError:
                pass
        name = self._package_info(C.SECPKG_ATTR_PACKAGE_INFO, SecPkgContext_PackageInfoW())
        if name.lower() == "negotiate" and known is None:
            try:
                return self._negotiated_package()
            except SspiError:
                pass
        return name

    def _negotiated_package(self) -> str:
        info = SecPkgContext_NegotiationInfoW()
        return self._package_info(C.SECPKG_ATTR_NEGOTIATION_INFO, info)

    def _package_info(self, attribute: int, info: Any) -> str:
        pointer = self._query_buffer(attribute, info, "PackageInfo")
        if not pointer:
            raise InternalError(SEC_E_INTERNAL_ERROR, "QueryContextAttributesW", "no package info")
        try:
            name = pointer.contents.Name
            return read_utf16z(name) if name else ""
        finally:
            self._free_buffer(ctypes.cast(pointer, c_void_p))

    def sizes(self) -> ContextSizes:
        """Token, signature, block and trailer sizes (``SECPKG_ATTR_SIZES``), asked once.

        A closed context raises ``ValueError`` (and one inherited through ``os.fork()``
        ``InheritedHandleError``), like every other call, cached or not.
        """
        cached = self._sizes
        if cached is not None:
            self._check_usable()  # refused like a call: closed, or inherited through fork
            return cached
        raw = SecPkgContext_Sizes()
        self._query(C.SECPKG_ATTR_SIZES, raw)
        cached = ContextSizes(
            raw.cbMaxToken, raw.cbMaxSignature, raw.cbBlockSize, raw.cbSecurityTrailer
        )
        self._sizes = cached
        return cached

    @property
    def lifespan(self) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """``(start, expiry)`` as aware UTC datetimes (see ``filetime_to_datetime``)."""
        raw = SecPkgContext_Lifespan()
        self._query(C.SECPKG_ATTR_LIFESPAN, raw)
        return filetime_to_datetime(raw.tsStart), filetime_to_datetime(raw.tsExpiry)

    def session_key(self) -> bytes:
        """The session key. Secret: whoever holds it can read and forge the messages."""
        raw = SecPkgContext_SessionKey()
        pointer = self._query_buffer(C.SECPKG_ATTR_SESSION_KEY, raw, "SessionKey")
        if not pointer:
            return b""
        try:
            return ctypes.string_at(pointer, raw.SessionKeyLength)
        finally:
            ctypes.memset(pointer, 0, raw.SessionKeyLength)  # SSPI's copy, ours now
            self._free_buffer(pointer)

    @property
    def flags(self) -> int:
        """The context's attribute flags as the package reports them (``SECPKG_ATTR_FLAGS``).

        ``ISC_RET_*`` bits for the initiator's side, ``ASC_RET_*`` for the acceptor's.
        """
        raw = SecPkgContext_Flags()
        self._query(C.SECPKG_ATTR_FLAGS, raw)
        return int(raw.Flags)

    # Impersonation ----------------------------------------------------------------

    def impersonate(self) -> Impersonation:
        """Run a ``with`` body as the client (``ImpersonateSecurityContext``).

        ::

            with ctx.impersonate():
                ...  # this thread runs as the client

        Nothing happens until the ``with`` block is entered: an ``Impersonation`` never
        entered warns (``RuntimeWarning``) when it is collected, so a forgotten ``with``
        is loud. Always reverts (``RevertSecurityContext``) at the block's end, also when
        the body raises. Impersonation is per thread: only the calling thread runs as
        the client; other threads may use the context meanwhile, and closing it inside
        the body is safe (it is deleted after the revert). ``detach()`` and an export
        with ``DELETE_OLD`` are refused until the body ends. Blocks on one context open
        on one thread keep the client's identity until the last of them ends, in
        whatever order; a block for another context inside one is refused (its end
        would revert to the service's own identity, not to the outer client's). A
        block ended on another thread than the one that entered it raises
        ``RuntimeError`` and reverts nothing there.
        """
        return Impersonation(self)

    def client_token(self) -> AccessToken:
        """The client's access token (``QuerySecurityContextToken``), owned by the caller.

        For a server-side context: a new handle to the token of the client it
        authenticated, to run a process as the client or read its groups outside SSPI
        (``AccessToken.value``). Close it (``with``, or ``close()``); the context stays
        usable, and closing the context leaves the token open. Each call returns a new
        handle.

        Windows answers it for an established acceptor context (an imported one too,
        when its token came along). The client side has no client token: the provider's
        refusal is raised (the simulated provider answers ``SEC_E_NO_IMPERSONATION``, as
        for ``impersonate()``). sspi-rs and Wine have no Windows access tokens
        (``UnsupportedFunctionError``). A provider that hands out a token it offers no
        ``CloseHandle`` for raises ``SspiUnavailableError``, and the token is not kept.
        """
        lib = self._library()
        token = AccessToken._unfilled(lib, self.package) if lib.has("CloseHandle") else None
        written = c_void_p()
        try:
            self._call("QuerySecurityContextToken", byref(written))
            value = written.value
            if token is None:
                raise SspiUnavailableError(
                    f"{lib.description} handed out an access token but offers no "
                    "CloseHandle to close it with: use Windows SSPI"
                )
            if not value:
                raise InternalError(
                    SEC_E_INTERNAL_ERROR, "QuerySecurityContextToken", "no token was returned"
                )
            token._place(value)
        except BaseException:
            # Closed exactly once, by its owner: the token is placed in it first if the
            # call wrote one that the owner does not hold yet (an interrupt after the call).
            if token is not None:
                with contextlib.suppress(Exception):  # the call's error is the one to raise
                    if token.closed and written.value:
                        token._place(written.value)
                    token.close()
            raise
        return token


class _Client:
    """One thread's impersonation: the context, the pin that keeps it, the blocks open."""

    __slots__ = ("__weakref__", "blocks", "context", "pin", "thread")

    def __init__(self, context: SecurityContextBase, thread: object) -> None:
        self.context = context
        self.pin: Pin | None = None
        self.blocks = 1
        self.thread = thread  # the entering thread's _Impersonating.thread


class _Impersonating(threading.local):
    """Per thread: whom it runs as (``None``, or a ``_Client`` with no block open: itself).

    A weak reference: the blocks own their ``_Client``, so that blocks abandoned by an
    interrupt, and their context, can be collected (their finalizers revert).
    """

    client: weakref.ref[_Client] | None = None

    def __init__(self) -> None:
        # This thread's own mark (an ident is reused once its thread has ended).
        self.thread = object()

    def current(self) -> _Client | None:
        """The ``_Client`` of this thread's open blocks, if any."""
        ref = self.client
        client = None if ref is None else ref()
        return client if client is not None and client.blocks else None


_impersonating = _Impersonating()


class Impersonation:
    """The ``with`` block ``SecurityContextBase.impersonate()`` returns (see there).

    The blocks on one context open on one thread share one ``_Client``: the first makes
    the impersonation, the last to end (in whatever order they end: a generator or a
    task suspended in one) reverts it. Only the thread that entered a block can end it.
    """

    # Class defaults, not slots: the finalizer reads them on an object an interrupt left
    # half made.
    _context: SecurityContextBase | None = None
    _entered = False
    _client: _Client | None = None  # while this block is open

    def __init__(self, context: SecurityContextBase) -> None:
        self._context = context

    def __enter__(self) -> None:
        if self._entered:
            raise RuntimeError("this impersonate() block was already entered; call it again")
        self._entered = True
        context = self._context
        assert context is not None  # set by __init__
        here = _impersonating
        current = here.current()
        if current is not None:  # this thread impersonates already
            if current.context is not context:
                raise RuntimeError(
                    "this thread already impersonates the client of another context; "
                    "end that block first (a revert would return to the service's "
                    "identity, not to the outer client's)"
                )
            current.blocks, self._client = current.blocks + 1, current  # one line: see exit
            return
        client = _Client(context, here.thread)
        _handle, client.pin = context._pin()  # the context outlives the block, even if closed
        self._client = client  # before the call: an interrupt after it finds what to revert
        try:
            context._call("ImpersonateSecurityContext")
            here.client = weakref.ref(client)
        except (SspiError, ValueError):  # failed, or not made (closed meanwhile)
            self._client = None
            client.pin.release()  # nothing to revert
            raise
        except BaseException:  # interrupted after the call: it may have succeeded
            self._client = None
            _revert_quietly(context, client.pin)
            client.pin.release()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client = self._client
        if client is None:
            return
        if client.thread is not _impersonating.thread:
            raise RuntimeError(
                "this impersonate() block is ending on another thread than the one that "
                "entered it (a generator or coroutine suspended inside it and resumed "
                "elsewhere): a revert here would end this thread's impersonation, not that "
                "one's, so nothing was reverted and the entering thread still runs as the "
                "client until its other blocks end. Do not suspend inside impersonate()"
            )
        if client.blocks > 1:  # another block on this context is open here: still the client
            # One line: an interrupt lands before it or after it, never between the two.
            client.blocks, self._client = client.blocks - 1, None
            return
        _impersonating.client = None  # this thread's one client (no call: no interrupt)
        pin = client.pin
        assert pin is not None  # set before the impersonation
        context = client.context
        try:
            # On the pinned handle: the context may have been closed inside the block (or
            # collected with it); it is deleted after this, by the pin's release.
            context._call_pinned(pin, "RevertSecurityContext")
        except SspiError:
            raise  # the revert ran, and failed
        except BaseException:  # interrupted: it may not have run, and must have
            _revert_quietly(context, pin)
            raise
        finally:
            # Until here the block is still open: an interrupt before the try leaves it to
            # the finalizer, which reverts.
            client.blocks, client.pin, self._client = 0, None, None
            pin.release()

    def __del__(self) -> None:
        context = self._context
        if context is None:
            return  # never made (an interrupt in __init__)
        if not self._entered:
            import warnings

            warnings.warn(
                "ctx.impersonate() was called but its block never entered, so nothing "
                "ran as the client: write 'with ctx.impersonate():'",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        client, self._client = self._client, None
        if client is None:
            return
        # Abandoned inside the block (an interrupt skipped its exit, or a generator was
        # collected): end it. A revert acts on the calling thread, so it is made only on
        # the thread that entered; elsewhere it would end this thread's own impersonation.
        client.blocks -= 1
        if client.blocks or client.pin is None:
            return
        pin, client.pin = client.pin, None
        if client.thread is _impersonating.thread:
            _revert_quietly(client.context, pin)
        pin.release()


def _revert_quietly(context: SecurityContextBase, pin: Pin) -> None:
    """``RevertSecurityContext``, its failure ignored (there may be nothing to revert)."""
    with contextlib.suppress(Exception):  # best effort after an interrupt
        context._call_pinned(pin, "RevertSecurityContext")
