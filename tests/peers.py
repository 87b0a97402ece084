"""Peers nobody here wrote, on sspi-rs: sspilib and pyspnego's pure-Python NTLM.

Shared by the message tests (``test_peers_messages.py``) and the handshake tests. Every
``*_pair`` function runs a complete NTLM handshake between one of those libraries and
an ``sspi_import.SecurityContext`` and returns ``(peer, ours)``: ``peer`` is a ``Peer``
(one small interface over either library), ``ours`` the established context, which the
caller closes. sspi-rs must be installed as the library first (the ``sspi_rs`` fixture).

- ``sspilib_pair(identity, ours="acceptor")``: sspilib's ``ClientSecurityContext`` /
  ``ServerSecurityContext`` over the same sspi-rs.
- ``pyspnego_pair(identity, user_file, ours="acceptor")``: ``spnego.client`` /
  ``spnego.server`` with ``protocol="ntlm"`` and ``NegotiateOptions.use_ntlm``;
  ``user_file`` is written by ``ntlm_user_file`` and passed as ``NTLM_USER_FILE``
  (use ``monkeypatch.setenv``) for pyspnego's acceptor.
- ``drive(initiator_step, acceptor_step)``: the handshake loop alone, over two
  ``step(token) -> token | None`` callables.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import sspi_import

Step = Callable[[bytes | None], bytes | None]
Side = Literal["initiator", "acceptor"]


def ntlm_user_file(directory: Path, identity: sspi_import.Identity, password: str) -> Path:
    """Write pyspnego's ``NTLM_USER_FILE`` (``DOMAIN:user:password``) and return its path."""
    path = directory / "ntlm_users"
    path.write_text(f"{identity.domain}:{identity.user}:{password}\n", encoding="utf-8")
    return path


def drive(initiator: Step, acceptor: Step, rounds: int = 8) -> None:
    """Pass tokens between the two ``step`` callables until neither has one to send."""
    token = initiator(None)
    for _ in range(rounds):
        if not token:
            return
        token = acceptor(token)
        if not token:
            return
        token = initiator(token)
    raise AssertionError("the handshake did not finish")


class Peer:
    """One interface over a foreign context: ``wrap``/``unwrap`` and the WinRM layout.

    ``wrap_winrm`` returns the frame pywinrm sends (``len(header) as 4 bytes LE ||
    header || data``); ``unwrap_winrm`` takes one. ``name`` says which library it is.
    """

    def __init__(self, name: str, context: Any) -> None:
        self.name = name
        self.context = context

    def wrap(self, data: bytes) -> bytes:
        result = self.context.wrap(data)
        return bytes(result if isinstance(result, bytes) else result.data)

    def unwrap(self, message: bytes) -> bytes:
        return bytes(self.context.unwrap(message).data)

    def wrap_winrm(self, data: bytes) -> bytes:
        result = self.context.wrap_winrm(data)  # pyspnego only
        return struct.pack("<I", len(result.header)) + bytes(result.header) + bytes(result.data)

    def unwrap_winrm(self, frame: bytes) -> bytes:
        (length,) = struct.unpack_from("<I", frame)
        return bytes(self.context.unwrap_winrm(frame[4 : 4 + length], frame[4 + length :]))

    def __repr__(self) -> str:
        return f"<Peer {self.name}>"


def _ours(identity: sspi_import.Identity, side: Side) -> sspi_import.SecurityContext:
    usage: Literal["outbound", "inbound"] = "outbound" if side == "initiator" else "inbound"
    credentials = sspi_import.Credentials.acquire("NTLM", usage, identity)
    if side == "initiator":
        context = sspi_import.SecurityContext.initiator(credentials, "host/localhost")
    else:
        context = sspi_import.SecurityContext.acceptor(credentials)
    context._owns_credentials = True  # closed with the context, as loopback's are
    return context


def _ours_step(context: sspi_import.SecurityContext) -> Step:
    def step(token: bytes | None) -> bytes | None:
        return None if context.complete else context.step(token)

    return step


def _shake(mine: sspi_import.SecurityContext, ours: Side, their_step: Step) -> None:
    """Run the handshake between our context and the peer's ``step``, in its roles."""
    if ours == "acceptor":
        drive(their_step, _ours_step(mine))
    else:
        drive(_ours_step(mine), their_step)
    assert mine.complete


def sspilib_pair(
    identity: sspi_import.Identity, password: str, ours: Side = "acceptor"
) -> tuple[Peer, sspi_import.SecurityContext]:
    """sspilib against an ``sspi_import`` context, both on the loaded sspi-rs."""
    import sspilib

    mine = _ours(identity, ours)
    try:
        if ours == "acceptor":
            credential = sspilib.UserCredential(
                identity.user, password, domain=identity.domain, protocol="NTLM", usage="initiate"
            )
            theirs: Any = sspilib.ClientSecurityContext(credential, "host/localhost")
        else:
            credential = sspilib.UserCredential(
                identity.user, password, domain=identity.domain, protocol="NTLM", usage="accept"
            )
            theirs = sspilib.ServerSecurityContext(credential)

        def their_step(token: bytes | None) -> bytes | None:
            if theirs.complete:
                return None
            return theirs.step(token or b"") or None

        _shake(mine, ours, their_step)
        assert theirs.complete
    except BaseException:
        mine.close()
        raise
    return Peer("sspilib", theirs), mine


def pyspnego_pair(
    identity: sspi_import.Identity, password: str, user_file: Path, ours: Side = "acceptor"
) -> tuple[Peer, sspi_import.SecurityContext]:
    """pyspnego's pure-Python NTLM against an ``sspi_import`` context on sspi-rs.

    ``user_file`` must already be ``NTLM_USER_FILE`` in the environment when pyspnego
    accepts (``ours="initiator"``); it is checked here.
    """
    import spnego

    mine = _ours(identity, ours)
    try:
        options = spnego.NegotiateOptions.use_ntlm
        if ours == "acceptor":
            theirs: Any = spnego.client(
                f"{identity.domain}\\{identity.user}", password, protocol="ntlm", options=options
            )
        else:
            if os.environ.get("NTLM_USER_FILE") != str(user_file):
                raise RuntimeError("set NTLM_USER_FILE to user_file first (monkeypatch.setenv)")
            theirs = spnego.server(protocol="ntlm", options=options)

        def their_step(token: bytes | None) -> bytes | None:
            if theirs.complete:
                return None
            return theirs.step(token) or None

        _shake(mine, ours, their_step)
        assert theirs.complete
    except BaseException:
        mine.close()
        raise
    return Peer("pyspnego", theirs), mine
