"""Establishing contexts: ``SecurityContext`` (one side of a handshake) and ``loopback``.

Handle semantics: the first ``InitializeSecurityContextW``/``AcceptSecurityContext``
call writes a new context handle; only once that call has succeeded does the context
exist, and only then does the ``SecurityContext`` own it (a failed first call leaves
nothing to delete). Later calls pass the same handle in and out.

Each step holds the context's lock for the call (``OwnedHandle``), and pins the
credentials, which other contexts may be using at the same time: closing them during a
step frees them after it.

States: *not started* (no call made, nothing owned), *in handshake*, *complete*,
*closed*. Output tokens are requested with ``ISC_REQ_ALLOCATE_MEMORY``/``ASC_REQ_ALLOCATE_MEMORY``:
the package allocates a buffer of the exact size, copied once into ``bytes`` and freed
with ``FreeContextBuffer`` in ``finally``. That avoids a ``QuerySecurityPackageInfoW``
call per context to size a caller buffer, and ``cbMaxToken`` guesses that are wrong for
some packages (Negotiate tokens with large Kerberos tickets).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from ctypes import byref, c_uint32, pointer, string_at
from typing import Any, Final

from ._buffers import encode_name, free_context_buffer, readable
from ._filetime import filetime_to_datetime
from ._handle import report_cleanup
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import SecBuffer, SecBufferDesc, SecHandle, TimeStamp
from .context import SecurityContextBase
from .credentials import Credentials, Identity
from .errors import SspiError, check, status_info

__all__ = ["RequestFlags", "SecurityContext", "loopback"]


def _status(symbol: str) -> int:
    info = status_info(symbol)
    assert info is not None, symbol
    return info.status


SEC_E_OK: Final = _status("SEC_E_OK")
SEC_I_CONTINUE_NEEDED: Final = _status("SEC_I_CONTINUE_NEEDED")
SEC_I_COMPLETE_NEEDED: Final = _status("SEC_I_COMPLETE_NEEDED")
SEC_I_COMPLETE_AND_CONTINUE: Final = _status("SEC_I_COMPLETE_AND_CONTINUE")
_COMPLETE_TOKEN = frozenset({SEC_I_COMPLETE_NEEDED, SEC_I_COMPLETE_AND_CONTINUE})
_DONE = frozenset({SEC_E_OK, SEC_I_COMPLETE_NEEDED})
_CONTINUE = frozenset({SEC_I_CONTINUE_NEEDED, SEC_I_COMPLETE_AND_CONTINUE})


class RequestFlags(enum.IntFlag):
    """Context requirements to request, and what was granted, in ``ISC_REQ_*`` values.

    The acceptor's ``ASC_REQ_*``/``ASC_RET_*`` bits differ above ``CONNECTION``
    (``ASC_REQ_INTEGRITY`` is 0x20000, not 0x10000); ``SecurityContext`` translates,
    so both sides speak these values. ``ALLOCATE_MEMORY`` is always added internally.
    """

    NONE = 0
    DELEGATE = C.ISC_REQ_DELEGATE
    """Let the server act as the client on other machines (Kerberos)."""
    MUTUAL_AUTH = C.ISC_REQ_MUTUAL_AUTH
    """Authenticate the server to the client too."""
    REPLAY_DETECT = C.ISC_REQ_REPLAY_DETECT
    """Detect replayed messages."""
    SEQUENCE_DETECT = C.ISC_REQ_SEQUENCE_DETECT
    """Detect messages out of order."""
    CONFIDENTIALITY = C.ISC_REQ_CONFIDENTIALITY
    """Allow ``encrypt``/``decrypt``."""
    USE_SESSION_KEY = C.ISC_REQ_USE_SESSION_KEY
    """Use a new session key (Kerberos user-to-user)."""
    CONNECTION = C.ISC_REQ_CONNECTION
    """A connection-oriented context."""
    INTEGRITY = C.ISC_REQ_INTEGRITY
    """Allow ``sign``/``verify``."""
    IDENTIFY = C.ISC_REQ_IDENTIFY
    """The server may identify, not impersonate, the client."""


DEFAULT_FLAGS: Final = (
    RequestFlags.MUTUAL_AUTH
    | RequestFlags.REPLAY_DETECT
    | RequestFlags.SEQUENCE_DETECT
    | RequestFlags.CONFIDENTIALITY
    | RequestFlags.INTEGRITY
)
_ALL_FLAGS = int(sum(RequestFlags))
# (RequestFlags bit, ASC_REQ bit, ASC_RET bit); the ISC_RET bits equal the ISC_REQ ones
# for every member.
_ACCEPTOR_BITS = (
    (C.ISC_REQ_DELEGATE, C.ASC_REQ_DELEGATE, C.ASC_RET_DELEGATE),
    (C.ISC_REQ_MUTUAL_AUTH, C.ASC_REQ_MUTUAL_AUTH, C.ASC_RET_MUTUAL_AUTH),
    (C.ISC_REQ_REPLAY_DETECT, C.ASC_REQ_REPLAY_DETECT, C.ASC_RET_REPLAY_DETECT),
    (C.ISC_REQ_SEQUENCE_DETECT, C.ASC_REQ_SEQUENCE_DETECT, C.ASC_RET_SEQUENCE_DETECT),
    (C.ISC_REQ_CONFIDENTIALITY, C.ASC_REQ_CONFIDENTIALITY, C.ASC_RET_CONFIDENTIALITY),
    (C.ISC_REQ_USE_SESSION_KEY, C.ASC_REQ_USE_SESSION_KEY, C.ASC_RET_USE_SESSION_KEY),
    (C.ISC_REQ_CONNECTION, C.ASC_REQ_CONNECTION, C.ASC_RET_CONNECTION),
    (C.ISC_REQ_INTEGRITY, C.ASC_REQ_INTEGRITY, C.ASC_RET_INTEGRITY),
    (C.ISC_REQ_IDENTIFY, C.ASC_REQ_IDENTIFY, C.ASC_RET_IDENTIFY),
)


def _check_flags(flags: object) -> int:
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise TypeError(f"flags must be RequestFlags (an int), not {type(flags).__name__}")
    if flags < 0 or flags & ~_ALL_FLAGS:
        raise ValueError(f"unknown request flags {int(flags):#x}: combine RequestFlags members")
    return int(flags)


def _to_asc_req(flags: int) -> int:
    return sum(asc for isc, asc, _ in _ACCEPTOR_BITS if flags & isc)


def _from_asc_ret(attributes: int) -> RequestFlags:
    return RequestFlags(sum(isc for isc, _, ret in _ACCEPTOR_BITS if attributes & ret))


class SecurityContext(SecurityContextBase):
    """One side of an SSPI handshake, and then an established context.

    Make one with ``SecurityContext.initiator`` (client) or ``SecurityContext.acceptor``
    (server), then exchange tokens with ``step`` until ``complete``::

        with SecurityContext.initiator(creds, "host/server") as ctx:
            token = ctx.step(None)
            while not ctx.complete:
                token = ctx.step(send_and_receive(token))

    The context keeps a reference to its credentials, so they live as long as it does
    (closing them stays the caller's job, except for the contexts ``loopback`` returns,
    which own theirs). ``close()`` deletes the context once it exists.
    """

    __slots__ = (
        "_credentials",
        "_expiry",
        "_failed",
        "_granted",
        "_initiator",
        "_owns_credentials",
        "_requested",
        "_started",
        "_state",
        "_target",
    )
    _kind = "security context"
    _credentials: Credentials
    _expiry: int
    _failed: bool
    _granted: int
    _initiator: bool
    _owns_credentials: bool  # loopback's contexts close their credentials with them
    _requested: int
    _started: bool
    _state: int
    _target: bytes | None

    def __init__(self) -> None:
        raise TypeError("use SecurityContext.initiator(...) or SecurityContext.acceptor(...)")

    @classmethod
    def _make(
        cls, credentials: object, flags: object, *, initiator: bool, target: bytes | None
    ) -> SecurityContext:
        if not isinstance(credentials, Credentials):
            raise TypeError(f"credentials must be Credentials, not {type(credentials).__name__}")
        requested = _check_flags(flags)
        credentials._live()  # closed credentials: ValueError now, not at the first step
        context = object.__new__(cls)
        context._own(credentials._lib, None)  # a handle only once the first call made it
        context._credentials = credentials
        context._owns_credentials = False
        context._initiator = initiator
        context._target = target
        context._requested = requested
        context._granted = 0
        context._expiry = 0
        context._state = SEC_I_CONTINUE_NEEDED  # "more steps": none made yet
        context._failed = False
        context._started = False
        return context

    @classmethod
    def initiator(
        cls,
        credentials: Credentials,
        target_name: str | None = None,
        flags: RequestFlags | int = DEFAULT_FLAGS,
    ) -> SecurityContext:
        """The client side (``InitializeSecurityContextW``); its first ``step`` takes ``None``.

        ``target_name`` is the server's SPN (``"host/server.example.com"``); NTLM can do
        without one.
        """
        target = None if target_name is None else encode_name(target_name, "target name")
        return cls._make(credentials, flags, initiator=True, target=target)

    @classmethod
    def acceptor(
        cls, credentials: Credentials, flags: RequestFlags | int = DEFAULT_FLAGS
    ) -> SecurityContext:
        """The server side (``AcceptSecurityContext``); every ``step`` takes a client token."""
        return cls._make(credentials, flags, initiator=False, target=None)

    # State --------------------------------------------------------------------------

    @property
    def package(self) -> str:
        """The package of the credentials the context was made with."""
        return self._credentials.package

    @property
    def credentials(self) -> Credentials:
        """The credentials the context was made with."""
        return self._credentials

    @property
    def is_initiator(self) -> bool:
        """``True`` for the client side, ``False`` for the server side."""
        return self._initiator

    @property
    def complete(self) -> bool:
        """``True`` once the handshake is done on this side."""
        return self._state in _DONE

    @property
    def started(self) -> bool:
        """``True`` once the first ``step`` made the context (or ``close()`` ended it)."""
        return self._started

    @property
    def closed(self) -> bool:
        """``True`` once closed (or given up); ``False`` before the first ``step``."""
        return self._started and self._handle is None

    def _closed_error(self) -> ValueError:
        if not self._started:
            return ValueError(
                "the handshake has not started: call step() until complete before using the context"
            )
        return super()._closed_error()

    @property
    def flags(self) -> RequestFlags:
        """The flags the package granted, in ``RequestFlags`` values (both sides)."""
        if self._initiator:
            return RequestFlags(self._granted & _ALL_FLAGS)
        return _from_asc_ret(self._granted)

    @property
    def expiry(self) -> datetime.datetime | None:
        """When the context expires (aware UTC), as the last step reported it."""
        return filetime_to_datetime(self._expiry)

    # The handshake ------------------------------------------------------------------

    def step(self, in_token: bytes | bytearray | memoryview | None) -> bytes | None:
        """Make one handshake call; return the token for the peer, or ``None`` if none.

        Handles ``SEC_I_CONTINUE_NEEDED`` (call again with the peer's reply),
        ``SEC_I_COMPLETE_NEEDED`` and ``SEC_I_COMPLETE_AND_CONTINUE`` (``CompleteAuthToken``
        is called here). A failed call raises its ``SspiError``; the context can then only
        be closed.
        """
        if self._failed:
            raise ValueError("an earlier step of this handshake failed; close the context")
        if self._started and self._handle is None:
            raise self._closed_error()
        if self.complete:
            raise ValueError("the handshake is already complete")
        if in_token is None:
            if not (self._initiator and not self._started):
                raise ValueError("only the initiator's first step goes without an input token")
            keepalive: Any = None
            in_desc = None
        else:
            keepalive, address, length = readable(in_token, "input token")
            in_buffer = SecBuffer(length, C.SECBUFFER_TOKEN, address)
            in_desc = SecBufferDesc(C.SECBUFFER_VERSION, 1, pointer(in_buffer))
        out_buffer = SecBuffer(0, C.SECBUFFER_TOKEN, None)
        out_desc = SecBufferDesc(C.SECBUFFER_VERSION, 1, pointer(out_buffer))
        attributes = c_uint32()
        expiry = TimeStamp()
        cleanup: list[BaseException] = []
        credentials = self._credentials._pin()  # ValueError once they are closed
        first = False
        try:
            with self._lock:
                first = not self._started
                handle = SecHandle() if first else self._live()  # ValueError once closed
                status = self._call_handshake(
                    credentials, first, handle, in_desc, out_desc, attributes, expiry
                )
                if first:
                    self._handle = handle  # the context exists from here: owned
                    self._started = True
                if status in _COMPLETE_TOKEN:
                    # It may update the output token (Digest, DCE style): copy after it.
                    self._complete(handle, out_desc)
            token = _read_token(out_desc)
        except BaseException:
            self._failed = True
            if first:
                self._started = True  # nothing was made: the context is over (closed)
            raise
        finally:
            allocated = out_desc.pBuffers[0].pvBuffer
            if allocated:
                try:
                    free_context_buffer(self._lib, allocated)
                except Exception as exc:  # the step happened: report, never lose it
                    cleanup.append(exc)
            try:
                self._credentials._unpin()
            except Exception as exc:  # closed meanwhile and the deferred free failed
                cleanup.append(exc)
        del keepalive
        if status not in _DONE and status not in _CONTINUE:
            self._failed = True
            raise SspiError(status, self._function, "unexpected status during the handshake")
        self._state = status
        self._granted = attributes.value
        self._expiry = expiry.value
        if cleanup:
            return report_cleanup(token, cleanup, self._function)
        return token

    def _complete(self, handle: SecHandle, out_desc: SecBufferDesc) -> None:
        check(self._lib.CompleteAuthToken(byref(handle), byref(out_desc)), "CompleteAuthToken")

    @property
    def _function(self) -> str:
        return "InitializeSecurityContextW" if self._initiator else "AcceptSecurityContext"

    def _call_handshake(
        self,
        credential_handle: SecHandle,
        first: bool,
        handle: SecHandle,
        in_desc: SecBufferDesc | None,
        out_desc: SecBufferDesc,
        attributes: c_uint32,
        expiry: Any,
    ) -> int:
        credentials = byref(credential_handle)
        existing = None if first else byref(handle)
        inputs = None if in_desc is None else byref(in_desc)
        if self._initiator:
            status: int = self._lib.InitializeSecurityContextW(
                credentials,
                existing,
                self._target,
                self._requested | C.ISC_REQ_ALLOCATE_MEMORY,
                0,
                C.SECURITY_NATIVE_DREP,
                inputs,
                0,
                byref(handle),
                byref(out_desc),
                byref(attributes),
                byref(expiry),
            )
        else:
            status = self._lib.AcceptSecurityContext(
                credentials,
                existing,
                inputs,
                _to_asc_req(self._requested) | C.ASC_REQ_ALLOCATE_MEMORY,
                C.SECURITY_NATIVE_DREP,
                byref(handle),
                byref(out_desc),
                byref(attributes),
                byref(expiry),
            )
        return check(status, self._function)

    # Ownership ----------------------------------------------------------------------

    def _release(self, handle: SecHandle) -> None:
        try:
            super()._release(handle)
        finally:
            if self._owns_credentials:
                self._credentials.close()

    def _consumed(self) -> None:
        if self._owns_credentials:
            self._credentials.close()

    def close(self) -> None:
        """Delete the context (if it was made) and close credentials it owns."""
        self._started = True  # a closed context never starts a new handshake
        try:
            super().close()
        finally:
            if self._owns_credentials:
                self._credentials.close()

    def _describe(self, *, closed: bool) -> str:
        side = "initiator" if self._initiator else "acceptor"
        if closed:
            state = "closed"
        elif not self._started:
            state = "not started"
        elif self.complete:
            state = "complete"
        else:
            state = "in handshake"
        return f"<SecurityContext {side} package={self.package!r} {state}>"


def _read_token(desc: SecBufferDesc) -> bytes | None:
    buffer = desc.pBuffers[0]
    if not buffer.pvBuffer or not buffer.cbBuffer:
        return None
    return string_at(buffer.pvBuffer, buffer.cbBuffer)


_MAX_ROUNDS = 16  # real handshakes take 2-3 round trips; a loop means a broken peer


def loopback(
    package: str = "NTLM",
    identity: Identity | None = None,
    target: str | None = "host/localhost",
    flags: RequestFlags | int = DEFAULT_FLAGS,
) -> tuple[SecurityContext, SecurityContext]:
    """Run a full handshake in this process and return ``(client, server)``, established.

    Both contexts own their credentials: closing a context closes its credentials too.
    If anything fails, everything acquired so far is closed before the error propagates;
    the error raised is the handshake's own (a failure while closing is added to it as a
    note).
    ``identity=None`` uses the logged-on user (Windows); sspi-rs needs an ``Identity``.
    """
    if identity is not None and not isinstance(identity, Identity):
        raise TypeError(f"identity must be an Identity or None, not {type(identity).__name__}")
    opened: list[Credentials | SecurityContext] = []
    try:
        client_credentials = Credentials.acquire(package, "outbound", identity)
        opened.append(client_credentials)
        server_credentials = Credentials.acquire(package, "inbound", identity)
        opened.append(server_credentials)
        client = SecurityContext.initiator(client_credentials, target, flags)
        client._owns_credentials = True
        opened.append(client)
        server = SecurityContext.acceptor(server_credentials, flags)
        server._owns_credentials = True
        opened.append(server)
        token = client.step(None)
        for _ in range(_MAX_ROUNDS):
            if token is None:
                break
            token = server.step(token)
            if token is None:
                break
            token = client.step(token)
        if not (client.complete and server.complete):
            raise RuntimeError(
                f"the {package} loopback handshake stopped before both sides completed "
                f"(client complete: {client.complete}, server complete: {server.complete})"
            )
    except BaseException as failure:
        _close_all(reversed(opened), failure)
        raise
    return client, server


def _close_all(items: Iterable[Credentials | SecurityContext], failure: BaseException) -> None:
    """Close every item; a cleanup error is noted on ``failure``, which stays the error."""
    for item in items:
        try:
            item.close()
        except Exception as exc:
            note = f"while cleaning up, closing {item!r} failed too: {exc}"
            add_note = getattr(failure, "add_note", None)  # Python 3.11+
            if add_note is not None:
                add_note(note)
