"""The Kerberos lane's two sides: sspi_import on sspi-rs initiates, MIT GSSAPI accepts.

The acceptor is never sspi-rs (it cannot be a Kerberos acceptor): it is MIT's GSSAPI
through python-gssapi (``gss_acceptor``) or through pyspnego (``spnego_acceptor``), with
the keytab of ``kdc.SERVICE`` that ``KRB5_KTNAME`` names (the ``kerberos`` fixture of
conftest.py sets it and the rest of the realm's environment).

python-gssapi and pyspnego's Kerberos (which needs the ``krb5`` package) are imported
inside the functions, not at import time: the modules that use this one are collected
on every machine, and only the ``kerberos`` fixture decides whether they can run.

Our side: ``initiator(...)`` makes a ``SecurityContext`` that owns its credentials;
``shake(ours, their_step)`` runs the handshake and returns every token that crossed;
``connect(make_ours, make_theirs, step_of)`` makes both sides and shakes them, once
more when sspi-rs trips over the acceptor's sequence number (below).

A known sspi-rs fault, pinned in test_kerberos_limits.py: it refuses an AP-REP whose
sequence number DER-encodes in fewer than four bytes ("invalid ApRep sequence number",
``SEC_E_INVALID_TOKEN`` from the initiator's second step). MIT picks that number at
random below 2**30, so about one handshake in 128 fails that way; ``connect`` starts
such a handshake again (three tries), so that the other tests test what they name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kdc import PASSWORD, REALM, SERVICE, USER
from sspi_import import (
    ChannelBindings,
    Credentials,
    Identity,
    InvalidTokenError,
    IovBuffer,
    RequestFlags,
    SecurityContext,
)
from sspi_import.handshake import DEFAULT_FLAGS

__all__ = [
    "DEFAULT_FLAGS",
    "IDENTITY",
    "PRINCIPAL",
    "SESSION_KEY_OID",
    "ApRepRefusedError",
    "Pair",
    "connect",
    "gss_acceptor",
    "gss_iov_unwrap",
    "gss_iov_wrap",
    "gss_pair",
    "gss_session_key",
    "gss_step",
    "initiator",
    "iov_bytes",
    "shake",
    "spnego_acceptor",
    "spnego_pair",
]

IDENTITY = Identity(USER, REALM, PASSWORD)
PRINCIPAL = f"{USER}@{REALM}"
SESSION_KEY_OID = "1.2.840.113554.1.2.2.5.5"  # GSS_C_INQ_SSPI_SESSION_KEY (MIT)
Step = Callable[[bytes], bytes | None]
Peer = TypeVar("Peer")
TRIES = 3


@dataclass
class Pair(Generic[Peer]):
    """Both sides of an established handshake and the tokens that crossed."""

    ours: SecurityContext
    theirs: Peer
    tokens: list[bytes]


class ApRepRefusedError(AssertionError):
    """Our initiator refused the acceptor's reply (AP-REP): ``SEC_E_INVALID_TOKEN`` there."""


def initiator(
    package: str = "Kerberos",
    *,
    packages: Sequence[str] | None = None,
    flags: RequestFlags | int = DEFAULT_FLAGS,
    target: str | None = SERVICE,
    identity: Identity = IDENTITY,
    channel_bindings: ChannelBindings | None = None,
) -> SecurityContext:
    """Our client: credentials for ``identity``, a context for ``target``; owns both."""
    credentials = Credentials.acquire(package, "outbound", identity, packages=packages)
    try:
        context = SecurityContext.initiator(
            credentials, target, flags, channel_bindings=channel_bindings
        )
    except BaseException:
        credentials.close()
        raise
    context._owns_credentials = True  # closed with the context
    return context


def shake(ours: SecurityContext, their_step: Step, rounds: int = 4) -> list[bytes]:
    """Run the handshake from our first token until no side has one to send.

    Returns the tokens in the order they crossed (ours, theirs, ours...). Stops without
    error when the peer sends nothing back, whether or not our side is complete: the
    caller asserts what it expects.
    """
    tokens: list[bytes] = []
    token = ours.step(None)
    for _ in range(rounds):
        if token is None:
            return tokens
        tokens.append(token)
        reply = their_step(token)
        if not reply:
            return tokens
        tokens.append(reply)
        try:
            token = ours.step(reply)
        except InvalidTokenError as exc:
            if len(tokens) != 2:
                raise
            raise ApRepRefusedError(f"our initiator refused the acceptor's reply: {exc}") from exc
    raise AssertionError(f"the handshake did not end within {rounds} rounds")


def connect(
    make_ours: Callable[[], SecurityContext],
    make_theirs: Callable[[], Peer],
    step_of: Callable[[Peer], Step],
) -> Pair[Peer]:
    """Make both sides and run the handshake; ``pair.ours`` is the caller's to close.

    A handshake whose AP-REP sspi-rs refuses (``ApRepRefusedError``: the sequence-number fault
    of the module docstring) is made again with new contexts, up to three tries in all;
    any other failure is raised at once.
    """
    for attempt in range(1, TRIES + 1):
        ours = make_ours()
        try:
            theirs = make_theirs()
            tokens = shake(ours, step_of(theirs))
        except ApRepRefusedError:
            ours.close()
            if attempt == TRIES:
                raise
            continue
        except BaseException:
            ours.close()
            raise
        return Pair(ours, theirs, tokens)
    raise AssertionError("unreachable")  # pragma: no cover


def gss_pair(
    package: str = "Kerberos", *, acceptor_bindings: bytes | None = None, **ours: Any
) -> Pair[Any]:
    """Our initiator (``initiator(package, **ours)``) against python-gssapi, established."""
    return connect(
        lambda: initiator(package, **ours), lambda: gss_acceptor(acceptor_bindings), gss_step
    )


def spnego_pair(package: str = "Kerberos", **ours: Any) -> Pair[Any]:
    """Our initiator against pyspnego (``"kerberos"``, or ``"negotiate"`` for Negotiate)."""
    protocol = "kerberos" if package == "Kerberos" else "negotiate"
    return connect(
        lambda: initiator(package, **ours),
        lambda: spnego_acceptor(protocol),
        lambda theirs: theirs.step,
    )


def gss_acceptor(channel_bindings: bytes | None = None) -> Any:
    """MIT's acceptor (``gssapi.SecurityContext``), keys from the keytab, any mechanism."""
    import gssapi
    import gssapi.raw

    bindings = None
    if channel_bindings is not None:
        bindings = gssapi.raw.ChannelBindings(application_data=channel_bindings)
    credentials = gssapi.Credentials(usage="accept")
    return gssapi.SecurityContext(creds=credentials, usage="accept", channel_bindings=bindings)


def gss_step(acceptor: Any) -> Step:
    """``acceptor.step`` as a ``Step``: the reply token, or ``None``."""

    def step(token: bytes) -> bytes | None:
        reply = acceptor.step(token)
        return bytes(reply) if reply else None

    return step


def gss_session_key(acceptor: Any) -> bytes:
    """The session key MIT's acceptor holds (what SSPI's ``SECPKG_ATTR_SESSION_KEY`` gives)."""
    import gssapi
    import gssapi.raw

    values = gssapi.raw.inquire_sec_context_by_oid(
        acceptor, gssapi.OID.from_int_seq(SESSION_KEY_OID)
    )
    return bytes(values[0])


def spnego_acceptor(protocol: str) -> Any:
    """pyspnego's acceptor over MIT GSSAPI: ``"kerberos"`` or ``"negotiate"`` (SPNEGO)."""
    import spnego

    return spnego.server(hostname="localhost", service="HTTP", protocol=protocol)


def gss_iov_wrap(acceptor: Any, data: bytes, *, confidential: bool = True) -> tuple[bytes, bytes]:
    """MIT's ``gss_wrap_iov`` (header, data, padding): ``(header, ciphertext + padding)``."""
    import gssapi.raw
    from gssapi.raw import IOV, IOVBufferType

    iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
    gssapi.raw.wrap_iov(acceptor, iov, confidential=confidential)
    return bytes(iov[0].value or b""), bytes(iov[1].value or b"") + bytes(iov[2].value or b"")


def gss_iov_unwrap(acceptor: Any, header: bytes, *parts: tuple[str, bytes]) -> tuple[bytes, bool]:
    """MIT's ``gss_unwrap_iov`` over ``header`` and typed parts; ``(data, encrypted)``.

    ``parts`` are ``("data", bytes)``, ``("padding", bytes)`` or ``("sign_only", bytes)``
    in order. Each buffer is given as python-gssapi's ``IOVBuffer(type, False, value)``:
    its ``(type, value)`` tuple form would read the value as the "allocate" flag.
    """
    import gssapi.raw
    from gssapi.raw import IOV, IOVBuffer, IOVBufferType

    buffers = [IOVBuffer(IOVBufferType.header, False, header)]
    buffers += [IOVBuffer(IOVBufferType[kind], False, value) for kind, value in parts]
    iov = IOV(*buffers, std_layout=False)
    result = gssapi.raw.unwrap_iov(acceptor, iov)
    data = b"".join(
        bytes(buffer.value or b"") for buffer in iov if buffer.type == IOVBufferType.data
    )
    return data, bool(result.encrypted)


def iov_bytes(buffer: IovBuffer) -> bytes:
    """The bytes a ``wrap_iov``/``unwrap_iov`` result buffer holds."""
    data = buffer.data
    assert isinstance(data, bytes | bytearray | memoryview), data
    return bytes(data)
