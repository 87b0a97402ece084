"""Establishing contexts: ``SecurityContext`` (one side of a handshake) and ``loopback``.

Handle semantics: the first ``InitializeSecurityContextW``/``AcceptSecurityContext``
call writes a new context handle; only once that call has succeeded does the context
exist, and only then does the ``SecurityContext`` own it (a failed first call leaves
nothing to delete). Later calls pass the same handle in and out.

Each step holds the context's lock for the call (``OwnedHandle``), and pins the
credentials, which other contexts may be using at the same time: closing them during a
step frees them after it. Steps are made one at a time: a ``step()`` that starts while
another thread's step on the same context is being made (or that another thread's step
overtook before it took the lock) is refused (``ValueError``) without reaching the
provider, and the handshake goes on unharmed. ``_steps`` counts it: it is odd while a
step is being made, and every step changes it.

Input buffers are what .NET, Chromium, curl and pyspnego pass: the token, and the
channel bindings when there are any. The extra ``SECBUFFER_EMPTY`` buffer in which a
package reports unconsumed input (``SECBUFFER_EXTRA``) is documented for Schannel only,
and passed for Schannel only.

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
from ctypes import byref, c_uint32, string_at
from typing import Any, ClassVar, Final

from ._buffers import encode_name, readable
from ._checks import integer
from ._filetime import filetime_to_datetime
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.status_codes import (
    SEC_E_OK,
    SEC_I_COMPLETE_AND_CONTINUE,
    SEC_I_COMPLETE_NEEDED,
    SEC_I_CONTINUE_NEEDED,
)
from ._raw.structs import SecHandle, TimeStamp
from ._secbuffers import Descriptor
from .bindings import ChannelBindings
from .context import SecurityContextBase
from .credentials import Credentials, Identity
from .errors import IncompleteMessageError, SspiError, report_cleanup
from .library import call

__all__ = ["ACCEPTOR_FLAGS", "RequestFlags", "SecurityContext", "loopback"]

_COMPLETE_TOKEN = frozenset({SEC_I_COMPLETE_NEEDED, SEC_I_COMPLETE_AND_CONTINUE})
_DONE = frozenset({SEC_E_OK, SEC_I_COMPLETE_NEEDED})
_CONTINUE = frozenset({SEC_I_CONTINUE_NEEDED, SEC_I_COMPLETE_AND_CONTINUE})


class RequestFlags(enum.IntFlag):
    """Context requirements to request, and what was granted, in ``ISC_REQ_*`` values.

    One member per ``ISC_REQ_*`` bit of sspi.h, named as the constant without its prefix,
    except ``ALLOCATE_MEMORY`` (always added internally: the library owns output
    buffers), ``RESERVED1`` (undocumented) and ``MESSAGES`` (a 64-bit value that does
    not fit the 32-bit ``fContextReq``).

    The acceptor's ``ASC_REQ_*``/``ASC_RET_*`` bits differ from 0x4000 on
    (``ASC_REQ_INTEGRITY`` is 0x20000, not 0x10000), and so do the initiator's
    ``ISC_RET_*`` bits from 0x1000 on (``ISC_RET_CALL_LEVEL`` is 0x2000):
    ``SecurityContext`` translates both ways, so both sides speak these values.
    ``NULL_SESSION`` is ``ASC_REQ_ALLOW_NULL_SESSION``/``ASC_RET_NULL_SESSION`` on the
    acceptor. The acceptor has no bit for ``PROMPT_FOR_CREDS``, ``USE_SUPPLIED_CREDS``,
    ``MANUAL_CRED_VALIDATION``, ``FORWARD_CREDENTIALS``, ``NO_INTEGRITY``,
    ``USE_HTTP_STYLE``, ``UNVERIFIED_TARGET_NAME`` or ``CONFIDENTIALITY_ONLY``
    (``ACCEPTOR_FLAGS`` is what it takes): asking an acceptor for one is a ``ValueError``.
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
    PROMPT_FOR_CREDS = C.ISC_REQ_PROMPT_FOR_CREDS
    """Prompt the user for credentials if needed (initiator only)."""
    USE_SUPPLIED_CREDS = C.ISC_REQ_USE_SUPPLIED_CREDS
    """Use package-specific credentials supplied in the input buffer (initiator only)."""
    USE_DCE_STYLE = C.ISC_REQ_USE_DCE_STYLE
    """DCE/RPC style: three legs, and ``CompleteAuthToken`` updates tokens."""
    DATAGRAM = C.ISC_REQ_DATAGRAM
    """A datagram (connectionless) context: messages may arrive out of order."""
    CONNECTION = C.ISC_REQ_CONNECTION
    """A connection-oriented context."""
    CALL_LEVEL = C.ISC_REQ_CALL_LEVEL
    """A context for one call only (``ISC_RET_CALL_LEVEL`` is 0x2000; translated)."""
    FRAGMENT_SUPPLIED = C.ISC_REQ_FRAGMENT_SUPPLIED
    """The input token is a fragment of a larger one."""
    EXTENDED_ERROR = C.ISC_REQ_EXTENDED_ERROR
    """Errors are reported to the peer as error tokens."""
    STREAM = C.ISC_REQ_STREAM
    """A stream-oriented context (Schannel)."""
    INTEGRITY = C.ISC_REQ_INTEGRITY
    """Allow ``sign``/``verify``."""
    IDENTIFY = C.ISC_REQ_IDENTIFY
    """The server may identify, not impersonate, the client."""
    NULL_SESSION = C.ISC_REQ_NULL_SESSION
    """An anonymous (null session) context; the acceptor's bit is ``ALLOW_NULL_SESSION``."""
    MANUAL_CRED_VALIDATION = C.ISC_REQ_MANUAL_CRED_VALIDATION
    """Schannel: the caller validates the server certificate itself (initiator only)."""
    FRAGMENT_TO_FIT = C.ISC_REQ_FRAGMENT_TO_FIT
    """Fragment output tokens to the output buffer's size (``*_RET_FRAGMENT_ONLY``)."""
    FORWARD_CREDENTIALS = C.ISC_REQ_FORWARD_CREDENTIALS
    """Forward the client's credentials (initiator only)."""
    NO_INTEGRITY = C.ISC_REQ_NO_INTEGRITY
    """Do not negotiate integrity (initiator only)."""
    USE_HTTP_STYLE = C.ISC_REQ_USE_HTTP_STYLE
    """Digest over HTTP (initiator only)."""
    UNVERIFIED_TARGET_NAME = C.ISC_REQ_UNVERIFIED_TARGET_NAME
    """The target name is not verified (initiator only)."""
    CONFIDENTIALITY_ONLY = C.ISC_REQ_CONFIDENTIALITY_ONLY
    """Confidentiality without integrity (initiator only)."""


DEFAULT_FLAGS: Final = (
    RequestFlags.MUTUAL_AUTH
    | RequestFlags.REPLAY_DETECT
    | RequestFlags.SEQUENCE_DETECT
    | RequestFlags.CONFIDENTIALITY
    | RequestFlags.INTEGRITY
)
_ALL_FLAGS = int(sum(RequestFlags))
_NONE = 0  # a direction in which a flag has no bit
# (RequestFlags bit, ISC_RET bit, ASC_REQ bit, ASC_RET bit), each looked up in sspi.h;
# _NONE where that side has no such bit (a request with no reported result, or a flag
# the acceptor lacks).
_FLAG_BITS = (
    (C.ISC_REQ_DELEGATE, C.ISC_RET_DELEGATE, C.ASC_REQ_DELEGATE, C.ASC_RET_DELEGATE),
    (C.ISC_REQ_MUTUAL_AUTH, C.ISC_RET_MUTUAL_AUTH, C.ASC_REQ_MUTUAL_AUTH, C.ASC_RET_MUTUAL_AUTH),
    (
        C.ISC_REQ_REPLAY_DETECT,
        C.ISC_RET_REPLAY_DETECT,
        C.ASC_REQ_REPLAY_DETECT,
        C.ASC_RET_REPLAY_DETECT,
    ),
    (
        C.ISC_REQ_SEQUENCE_DETECT,
        C.ISC_RET_SEQUENCE_DETECT,
        C.ASC_REQ_SEQUENCE_DETECT,
        C.ASC_RET_SEQUENCE_DETECT,
    ),
    (
        C.ISC_REQ_CONFIDENTIALITY,
        C.ISC_RET_CONFIDENTIALITY,
        C.ASC_REQ_CONFIDENTIALITY,
        C.ASC_RET_CONFIDENTIALITY,
    ),
    (
        C.ISC_REQ_USE_SESSION_KEY,
        C.ISC_RET_USE_SESSION_KEY,
        C.ASC_REQ_USE_SESSION_KEY,
        C.ASC_RET_USE_SESSION_KEY,
    ),
    (C.ISC_REQ_PROMPT_FOR_CREDS, C.ISC_RET_USED_COLLECTED_CREDS, _NONE, _NONE),
    (C.ISC_REQ_USE_SUPPLIED_CREDS, C.ISC_RET_USED_SUPPLIED_CREDS, _NONE, _NONE),
    (
        C.ISC_REQ_USE_DCE_STYLE,
        C.ISC_RET_USED_DCE_STYLE,
        C.ASC_REQ_USE_DCE_STYLE,
        C.ASC_RET_USED_DCE_STYLE,
    ),
    (C.ISC_REQ_DATAGRAM, C.ISC_RET_DATAGRAM, C.ASC_REQ_DATAGRAM, C.ASC_RET_DATAGRAM),
    (C.ISC_REQ_CONNECTION, C.ISC_RET_CONNECTION, C.ASC_REQ_CONNECTION, C.ASC_RET_CONNECTION),
    (C.ISC_REQ_CALL_LEVEL, C.ISC_RET_CALL_LEVEL, C.ASC_REQ_CALL_LEVEL, C.ASC_RET_CALL_LEVEL),
    (C.ISC_REQ_FRAGMENT_SUPPLIED, _NONE, C.ASC_REQ_FRAGMENT_SUPPLIED, _NONE),
    (
        C.ISC_REQ_EXTENDED_ERROR,
        C.ISC_RET_EXTENDED_ERROR,
        C.ASC_REQ_EXTENDED_ERROR,
        C.ASC_RET_EXTENDED_ERROR,
    ),
    (C.ISC_REQ_STREAM, C.ISC_RET_STREAM, C.ASC_REQ_STREAM, C.ASC_RET_STREAM),
    (C.ISC_REQ_INTEGRITY, C.ISC_RET_INTEGRITY, C.ASC_REQ_INTEGRITY, C.ASC_RET_INTEGRITY),
    (C.ISC_REQ_IDENTIFY, C.ISC_RET_IDENTIFY, C.ASC_REQ_IDENTIFY, C.ASC_RET_IDENTIFY),
    (
        C.ISC_REQ_NULL_SESSION,
        C.ISC_RET_NULL_SESSION,
        C.ASC_REQ_ALLOW_NULL_SESSION,
        C.ASC_RET_NULL_SESSION,
    ),
    (C.ISC_REQ_MANUAL_CRED_VALIDATION, C.ISC_RET_MANUAL_CRED_VALIDATION, _NONE, _NONE),
    (
        C.ISC_REQ_FRAGMENT_TO_FIT,
        C.ISC_RET_FRAGMENT_ONLY,
        C.ASC_REQ_FRAGMENT_TO_FIT,
        C.ASC_RET_FRAGMENT_ONLY,
    ),
    (C.ISC_REQ_FORWARD_CREDENTIALS, C.ISC_RET_FORWARD_CREDENTIALS, _NONE, _NONE),
    (C.ISC_REQ_NO_INTEGRITY, _NONE, _NONE, _NONE),
    (C.ISC_REQ_USE_HTTP_STYLE, C.ISC_RET_USED_HTTP_STYLE, _NONE, _NONE),
    (C.ISC_REQ_UNVERIFIED_TARGET_NAME, _NONE, _NONE, _NONE),
    (C.ISC_REQ_CONFIDENTIALITY_ONLY, C.ISC_RET_CONFIDENTIALITY_ONLY, _NONE, _NONE),
)
ACCEPTOR_FLAGS: Final = RequestFlags(sum(flag for flag, _, asc, _ in _FLAG_BITS if asc))
"""The ``RequestFlags`` an acceptor can request (those with an ``ASC_REQ_*`` bit)."""


def _check_flags(flags: object) -> int:
    if isinstance(flags, enum.Enum) and not isinstance(flags, RequestFlags):
        # ExportFlags.DELETE_OLD is 2, as MUTUAL_AUTH is: a mix-up, not a request.
        raise TypeError(f"request flags are RequestFlags, not {type(flags).__name__}")
    value = integer(flags, "flags (RequestFlags)")
    if value < 0 or value & ~_ALL_FLAGS:
        raise ValueError(f"unknown request flags {value:#x}: combine RequestFlags members")
    return value


def _kerberos_only(credentials: Credentials) -> bool:
    """Whether contexts of ``credentials`` can only use Kerberos (and so need a target)."""
    package = credentials.package.lower()
    if package == "kerberos":
        return True
    packages = credentials.packages
    return (
        package == "negotiate"
        and packages is not None
        and "!ntlm" in (item.lower() for item in packages)
    )


# The packages documented to report unconsumed input in an extra SECBUFFER_EMPTY input
# buffer (turned into SECBUFFER_EXTRA): Schannel, under its names. Others get none.
_REPORTS_EXTRA = frozenset(
    {"schannel", "microsoft unified security protocol provider", "default tls ssp"}
)


def _to_asc_req(flags: int) -> int:
    return sum(asc for isc, _, asc, _ in _FLAG_BITS if flags & isc)


def _from_asc_ret(attributes: int) -> RequestFlags:
    return RequestFlags(sum(isc for isc, _, _, ret in _FLAG_BITS if ret and attributes & ret))


def _from_isc_ret(attributes: int) -> RequestFlags:
    return RequestFlags(sum(isc for isc, ret, _, _ in _FLAG_BITS if ret and attributes & ret))


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

    _kind: ClassVar[str] = "security context"
    _bindings: bytes | None  # the SEC_CHANNEL_BINDINGS block, passed on every step
    _credentials: Credentials
    _expiry: int
    _extra: bytes
    _failed: bool
    _granted: int
    _initiator: bool
    _owns_credentials: bool  # loopback's contexts close their credentials with them
    _requested: int
    _context_req: int  # fContextReq as the call takes it: ISC_REQ_*/ASC_REQ_*, ALLOCATE_MEMORY
    _started: bool
    _state: int
    _steps: int  # twice the steps made, plus one while a step is being made
    _target: bytes | None

    def __init__(self) -> None:
        raise TypeError("use SecurityContext.initiator(...) or SecurityContext.acceptor(...)")

    @classmethod
    def _make(
        cls,
        credentials: object,
        flags: object,
        *,
        initiator: bool,
        target: bytes | None,
        channel_bindings: object,
    ) -> SecurityContext:
        if not isinstance(credentials, Credentials):
            raise TypeError(f"credentials must be Credentials, not {type(credentials).__name__}")
        requested = _check_flags(flags)
        if not initiator and requested & ~ACCEPTOR_FLAGS:
            lacking = RequestFlags(requested & ~ACCEPTOR_FLAGS)
            raise ValueError(
                f"the acceptor has no ASC_REQ_* bit for {lacking!r}: it is an initiator flag"
            )
        if channel_bindings is not None and not isinstance(channel_bindings, ChannelBindings):
            raise TypeError(
                "channel_bindings must be ChannelBindings or None, "
                f"not {type(channel_bindings).__name__}"
            )
        if credentials.closed:  # ValueError now, not at the first step
            raise credentials._closed_error()
        context = cls.__new__(cls)
        context._credentials = credentials
        context._owns_credentials = False
        context._initiator = initiator
        context._target = target
        context._requested = requested
        if initiator:
            context._context_req = requested | C.ISC_REQ_ALLOCATE_MEMORY
        else:
            context._context_req = _to_asc_req(requested) | C.ASC_REQ_ALLOCATE_MEMORY
        context._granted = 0
        context._expiry = 0
        context._state = SEC_I_CONTINUE_NEEDED  # "more steps": none made yet
        context._failed = False
        context._started = False
        context._steps = 0
        context._extra = b""
        context._bindings = None if channel_bindings is None else channel_bindings.to_bytes()
        context._own(credentials._library())  # a handle only once the first call made it
        return context

    @classmethod
    def initiator(
        cls,
        credentials: Credentials,
        target_name: str | None = None,
        flags: RequestFlags | int = DEFAULT_FLAGS,
        *,
        channel_bindings: ChannelBindings | None = None,
    ) -> SecurityContext:
        """The client side (``InitializeSecurityContextW``); its first ``step`` takes ``None``.

        ``target_name`` names the server. For Kerberos (and Negotiate, which picks
        Kerberos when it can) it is the service's SPN, ``service/host``:
        ``"HTTP/web.example.com"``, ``"host/server.example.com"``; Windows also takes
        ``service/host@REALM``. sspi-rs takes exactly ``service/host``: not the GSS-API form
        ``HTTP@web.example.com`` (``InvalidParameterError``), and no ``@REALM`` (it asks
        the KDC for the host ``"web.example.com@REALM"``: ``UnknownCredentialsError``);
        the errors say so. Kerberos cannot do without a target: ``None`` is refused
        (``ValueError``, before any call) for Kerberos credentials and for Negotiate
        credentials whose package list excludes NTLM (``"!ntlm"``). NTLM can do without
        one. ``channel_bindings`` (over TLS:
        ``ChannelBindings.tls_server_end_point(server_certificate_der)``) are passed as a
        ``SECBUFFER_CHANNEL_BINDINGS`` input buffer on every step, the first included.
        """
        if target_name is None:
            if isinstance(credentials, Credentials) and _kerberos_only(credentials):
                raise ValueError(
                    f"a {credentials.package} initiator needs the server's SPN as "
                    "target_name, service/host: e.g. 'HTTP/web.example.com' (Kerberos asks "
                    "the KDC for a ticket to that service)"
                )
            target = None
        else:
            target = encode_name(target_name, "target name")
        return cls._make(
            credentials, flags, initiator=True, target=target, channel_bindings=channel_bindings
        )

    @classmethod
    def acceptor(
        cls,
        credentials: Credentials,
        flags: RequestFlags | int = DEFAULT_FLAGS,
        *,
        channel_bindings: ChannelBindings | None = None,
    ) -> SecurityContext:
        """The server side (``AcceptSecurityContext``); every ``step`` takes a client token.

        ``flags`` may only hold ``ACCEPTOR_FLAGS`` (``ValueError`` otherwise).
        ``channel_bindings`` are passed on every step; a client that bound to different
        ones is refused with ``BadBindingsError`` (``SEC_E_BAD_BINDINGS``).
        """
        return cls._make(
            credentials, flags, initiator=False, target=None, channel_bindings=channel_bindings
        )

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
            return _from_isc_ret(self._granted)
        return _from_asc_ret(self._granted)

    @property
    def channel_bindings(self) -> ChannelBindings | None:
        """The channel bindings every step passes, or ``None``."""
        return None if self._bindings is None else ChannelBindings.from_bytes(self._bindings)

    @property
    def extra(self) -> bytes:
        """The tail of the last ``step``'s input that the package did not consume.

        Empty unless the provider reported a ``SECBUFFER_EXTRA`` buffer: those bytes
        belong to the next message (the start of the peer's next token, or of the first
        application message after the handshake), and must be handed on, not dropped.
        Only Schannel is documented to report it (the extra input buffer it needs is
        passed for Schannel only); NTLM, Kerberos and Negotiate take one whole token.
        """
        return self._extra

    @property
    def expiry(self) -> datetime.datetime | None:
        """When the context expires (aware UTC), as the last step reported it."""
        return filetime_to_datetime(self._expiry)

    # The handshake ------------------------------------------------------------------

    def step(self, in_token: bytes | bytearray | memoryview | None) -> bytes | None:
        """Make one handshake call; return the token for the peer, or ``None`` if none.

        Handles ``SEC_I_CONTINUE_NEEDED`` (call again with the peer's reply),
        ``SEC_I_COMPLETE_NEEDED`` and ``SEC_I_COMPLETE_AND_CONTINUE`` (``CompleteAuthToken``
        is called here).

        Input that is not exactly one token: if the package consumed only the start of
        ``in_token`` (``SECBUFFER_EXTRA``), the rest is in ``extra`` after the call; hand it
        on as the start of the next message. If ``in_token`` is only part of a token
        (``SEC_E_INCOMPLETE_MESSAGE``), ``IncompleteMessageError`` is raised and the
        context stays usable: read more from the peer and call ``step`` again with the
        longer input. Any other failure raises its ``SspiError``; the context can then
        only be closed. Steps are made one at a time: a ``step`` called while another
        thread's ``step`` on this context is being made raises ``ValueError`` without
        reaching the provider, and that other step goes on unharmed.
        """
        steps = self._steps  # odd while a step is being made; every step changes it
        if in_token is None:
            keepalive: Any = None
            length = 0
        else:
            keepalive, address, length = readable(in_token, "input token")
        fields: list[int] = []
        if in_token is not None:
            fields += (length, C.SECBUFFER_TOKEN, address)
            if self.package.lower() in _REPORTS_EXTRA:
                fields += (0, C.SECBUFFER_EMPTY, 0)  # where the package reports EXTRA
        bindings = self._bindings  # kept referenced across the call
        if bindings is not None:
            fields += (len(bindings), C.SECBUFFER_CHANNEL_BINDINGS, readable(bindings)[1])
        count = len(fields) // 3
        inputs = Descriptor(count) if count else None
        if inputs is not None:
            inputs.fill(count, *fields)
        in_memory = None if inputs is None else inputs.memory
        outputs = Descriptor(1)
        outputs.fill(1, 0, C.SECBUFFER_TOKEN, 0)
        out_memory = outputs.memory
        attributes = c_uint32()
        expiry = TimeStamp()
        cleanup: list[BaseException] = []
        credentials, pin = self._credentials._pin()  # ValueError once they are closed
        if steps & 1 and not self._failed:  # another step is being made: refused now
            pin.release()
            raise _overtaken()
        first = counted = False

        def prepare(handle: SecHandle | None) -> tuple[tuple[Any, ...], SecHandle | None]:
            nonlocal first, counted
            if self._failed:
                raise ValueError("an earlier step of this handshake failed; close the context")
            if self._steps != steps:  # another thread's step began after this one did
                raise _overtaken()
            if self._started and handle is None:
                raise self._closed_error()
            if self._state in _DONE:
                raise ValueError("the handshake is already complete")
            first = not self._started
            if in_token is None and not (self._initiator and first):
                raise ValueError("only the initiator's first step goes without an input token")
            self._steps, self._started, counted = steps + 1, True, True
            new = SecHandle() if first else None
            made = new if new is not None else handle
            assert made is not None  # started and not closed: checked above
            arguments = self._arguments(
                credentials,
                None if first else made,
                made,
                in_memory,
                out_memory,
                attributes,
                expiry,
            )
            return arguments, new

        try:
            status = self._call_in(self._function, prepare)
            if status in _COMPLETE_TOKEN:
                # It may update the output token (Digest, DCE style): copy after it.
                self._call("CompleteAuthToken", out_memory)
            token = _read_token(outputs)
        except IncompleteMessageError as exc:
            if exc.function != self._function:  # not the handshake call: no retry
                self._failed = True
                raise
            # Nothing was consumed and (on a first call) nothing was made: the same step
            # may be retried with more input.
            self._extra = b""
            if first:
                self._started = False
            self._steps = steps + 2  # this step is over
            raise IncompleteMessageError(
                exc.status,
                exc.function,
                f"the input token is incomplete ({length} bytes so far): read more from the "
                "peer and call step() again with the longer input",
            ) from None
        except BaseException:
            if counted:  # this step was made, and failed: the handshake is over
                self._failed = True
            raise
        finally:
            allocated = outputs.read(1)[2]
            if allocated:
                try:
                    call(self._library(), "FreeContextBuffer", allocated)
                except Exception as exc:  # the step happened: report, never lose it
                    cleanup.append(exc)
            try:
                pin.release()
            except Exception as exc:  # closed meanwhile and the deferred free failed
                cleanup.append(exc)
        self._extra = _unconsumed(inputs, keepalive, length)
        del keepalive
        if status not in _DONE and status not in _CONTINUE:
            self._failed = True
            raise SspiError(status, self._function, "unexpected status during the handshake")
        self._state = status
        self._granted = attributes.value
        self._expiry = expiry.value
        self._steps = steps + 2  # this step is over: the next may start
        if cleanup:
            return report_cleanup(token, cleanup, self._function)
        return token

    @property
    def _function(self) -> str:
        return "InitializeSecurityContextW" if self._initiator else "AcceptSecurityContext"

    def _arguments(
        self,
        credentials: SecHandle,
        existing: SecHandle | None,
        made: SecHandle,
        inputs: Any,
        outputs: Any,
        attributes: c_uint32,
        expiry: TimeStamp,
    ) -> tuple[Any, ...]:
        """The handshake call's arguments, in the order of its C prototype."""
        existing_ref = None if existing is None else byref(existing)
        inputs_ref = None if inputs is None else byref(inputs)
        if self._initiator:
            return (
                byref(credentials),
                existing_ref,
                self._target,
                self._context_req,
                0,
                C.SECURITY_NATIVE_DREP,
                inputs_ref,
                0,
                byref(made),
                byref(outputs),
                byref(attributes),
                byref(expiry),
            )
        return (
            byref(credentials),
            existing_ref,
            inputs_ref,
            self._context_req,
            C.SECURITY_NATIVE_DREP,
            byref(made),
            byref(outputs),
            byref(attributes),
            byref(expiry),
        )

    # Ownership ----------------------------------------------------------------------

    _RELEASES: ClassVar[bool] = True  # loopback's contexts close their credentials too

    def _released(self) -> None:
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

    def _check_ready(self) -> None:
        # Before the first message call only (what it sets up is kept): no cost after. The
        # provider's own answer points elsewhere (sspi-rs: sequence numbers).
        if self._handle is not None and not self.complete:
            raise ValueError(
                "the handshake is not complete (complete is False): call step() with the "
                "peer's tokens until it is, then protect messages; a context whose step "
                "failed cannot protect messages"
            )

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


def _overtaken() -> ValueError:
    return ValueError(
        "another thread is making a step() of this handshake at the same time (or one was "
        "interrupted): this one was not made, and the handshake goes on; make steps one "
        "at a time"
    )


def _unconsumed(inputs: Descriptor | None, data: Any, length: int) -> bytes:
    """The input's tail named by a ``SECBUFFER_EXTRA`` buffer, or ``b""``.

    ``data`` is the contiguous byte object ``readable`` handed to SSPI.
    """
    if inputs is None or data is None:
        return b""
    fields = inputs.read(inputs.capacity)
    for index in range(0, len(fields), 3):
        size, kind = fields[index], fields[index + 1]
        if kind == C.SECBUFFER_EXTRA and 0 < size <= length:
            return bytes(memoryview(data)[length - size :])
    return b""


def _read_token(outputs: Descriptor) -> bytes | None:
    size, _kind, at = outputs.read(1)
    if not at or not size:
        return None
    return string_at(at, size)


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
    # Everything checked before any credentials are acquired (the contexts below check
    # them again, once there are credentials to make them with).
    encode_name(package)
    requested = _check_flags(flags)
    if requested & ~ACCEPTOR_FLAGS:
        lacking = RequestFlags(requested & ~ACCEPTOR_FLAGS)
        raise ValueError(
            f"loopback() makes an acceptor too, which has no ASC_REQ_* bit for {lacking!r}"
        )
    if target is not None:
        encode_name(target, "target name")
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
