"""Channel bindings: ``ChannelBindings``, laid out as ``SEC_CHANNEL_BINDINGS``.

A channel binding ties an authentication to the channel it runs over (RFC 5056), so a
man in the middle who relays the handshake onto another TLS connection is refused
(Microsoft calls it Extended Protection for Authentication). Both sides hand the same
bindings to their handshake calls; the package folds them into its tokens and the
acceptor refuses a mismatch with ``SEC_E_BAD_BINDINGS`` (``BadBindingsError``).

In memory, SSPI takes one contiguous block: the ``SEC_CHANNEL_BINDINGS`` header (eight
``ULONG`` fields: address type, length and offset of the initiator address, the same for
the acceptor address, then length and offset of the application data), followed by the
data the offsets point at (counted from the start of the header). Over TLS only the
application data is used, and RFC 5929's ``tls-server-end-point`` is what HTTP clients
(requests-ntlm, pyspnego, browsers on Windows) send: ``ChannelBindings.tls_server_end_point``.
"""

from __future__ import annotations

import ctypes
import hashlib
from typing import NoReturn

from ._checks import ULONG_MAX, ulong
from ._der import pss_hash_algorithm, signature_algorithm
from ._raw.structs import SEC_CHANNEL_BINDINGS

__all__ = ["ChannelBindings"]

_HEADER = ctypes.sizeof(SEC_CHANNEL_BINDINGS)  # 32 at every width: eight ULONGs
_TLS_SERVER_END_POINT = b"tls-server-end-point:"

# signatureAlgorithm OID -> the hash RFC 5929 section 4.1 binds with: the signature's own
# hash, except that MD5 and SHA-1 are replaced by SHA-256.
_SIGNATURE_HASHES: dict[str, str] = {
    "1.2.840.113549.1.1.4": "sha256",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "sha256",  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.14": "sha224",  # sha224WithRSAEncryption
    "1.2.840.113549.1.1.11": "sha256",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "sha384",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": "sha512",  # sha512WithRSAEncryption
    "1.2.840.10045.4.1": "sha256",  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": "sha224",  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": "sha256",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": "sha384",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": "sha512",  # ecdsa-with-SHA512
    "1.2.840.10040.4.3": "sha256",  # dsa-with-sha1
    "2.16.840.1.101.3.4.3.1": "sha224",  # dsa-with-sha224
    "2.16.840.1.101.3.4.3.2": "sha256",  # dsa-with-sha256
}
_RSASSA_PSS = "1.2.840.113549.1.1.10"
# Hash algorithm OIDs (RSASSA-PSS names its hash in the parameters; SHA-1 is the default).
_HASHES: dict[str, str] = {
    "1.2.840.113549.2.5": "sha256",  # md5
    "1.3.14.3.2.26": "sha256",  # sha1
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_NO_SINGLE_HASH = {"1.3.101.112": "Ed25519", "1.3.101.113": "Ed448"}


def _check_bytes(value: object, what: str) -> bytes:
    if isinstance(value, str) or not isinstance(value, bytes | bytearray | memoryview):
        kind = type(value).__name__
        raise TypeError(f"the {what} must be bytes, bytearray or memoryview, not {kind}")
    with memoryview(value) as view:
        length = view.nbytes
    if length > ULONG_MAX:  # refused before it is copied
        raise ValueError(f"the {what} is {length} bytes; SSPI lengths are 32-bit")
    return bytes(value)


def _check_type(value: object, what: str) -> int:
    return ulong(value, f"the {what}")


class ChannelBindings:
    """Channel bindings for a handshake, as ``SEC_CHANNEL_BINDINGS`` lays them out.

    Pass the same bindings to both sides: ``SecurityContext.initiator(...,
    channel_bindings=cb)`` and ``SecurityContext.acceptor(..., channel_bindings=cb)``.
    Address types are the GSS-API ``GSS_C_AF_*`` values (0 means unspecified, which is what
    TLS bindings use). Immutable and comparable; ``bytes(cb)`` is the contiguous block
    SSPI reads (header, then initiator address, acceptor address, application data).
    """

    __slots__ = (
        "_acceptor_addr_type",
        "_acceptor_address",
        "_application_data",
        "_initiator_addr_type",
        "_initiator_address",
    )
    _initiator_addr_type: int
    _initiator_address: bytes
    _acceptor_addr_type: int
    _acceptor_address: bytes
    _application_data: bytes

    def __init__(
        self,
        *,
        initiator_addr_type: int = 0,
        initiator_address: bytes | bytearray | memoryview = b"",
        acceptor_addr_type: int = 0,
        acceptor_address: bytes | bytearray | memoryview = b"",
        application_data: bytes | bytearray | memoryview = b"",
    ) -> None:
        values = {
            "_initiator_addr_type": _check_type(initiator_addr_type, "initiator address type"),
            "_initiator_address": _check_bytes(initiator_address, "initiator address"),
            "_acceptor_addr_type": _check_type(acceptor_addr_type, "acceptor address type"),
            "_acceptor_address": _check_bytes(acceptor_address, "acceptor address"),
            "_application_data": _check_bytes(application_data, "application data"),
        }
        total = _HEADER + sum(len(v) for v in values.values() if isinstance(v, bytes))
        if total > ULONG_MAX:
            raise ValueError(f"the channel bindings are {total} bytes; SSPI lengths are 32-bit")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @classmethod
    def tls_server_end_point(
        cls, certificate_der: bytes | bytearray | memoryview
    ) -> ChannelBindings:
        """RFC 5929 ``tls-server-end-point`` bindings for the server's certificate.

        ``certificate_der`` is the DER certificate the TLS server presented (a client
        gets it from ``ssl_socket.getpeercert(binary_form=True)``). The application data
        is ``b"tls-server-end-point:"`` followed by the hash of the certificate, with the
        hash of the certificate's signature algorithm, SHA-256 when that is MD5 or SHA-1.
        Raises ``ValueError`` for bytes that are not a DER certificate and for signature
        algorithms RFC 5929 defines no single hash for (Ed25519, Ed448) or that are unknown.
        """
        der = _check_bytes(certificate_der, "certificate")
        algorithm = _hash_for(der)
        digest = hashlib.new(algorithm, der).digest()
        return cls(application_data=_TLS_SERVER_END_POINT + digest)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ChannelBindings:
        """Parse a ``SEC_CHANNEL_BINDINGS`` block (header and the data its offsets name)."""
        block = _check_bytes(data, "channel bindings")
        if len(block) < _HEADER:
            raise ValueError(
                f"channel bindings need a {_HEADER}-byte SEC_CHANNEL_BINDINGS header, "
                f"not {len(block)} bytes"
            )
        header = SEC_CHANNEL_BINDINGS.from_buffer_copy(block[:_HEADER])

        def part(length: int, offset: int, what: str) -> bytes:
            if not length:
                return b""
            if offset < _HEADER or offset + length > len(block):
                raise ValueError(f"the {what} lies outside the channel bindings block")
            return block[offset : offset + length]

        return cls(
            initiator_addr_type=header.dwInitiatorAddrType,
            initiator_address=part(
                header.cbInitiatorLength, header.dwInitiatorOffset, "initiator address"
            ),
            acceptor_addr_type=header.dwAcceptorAddrType,
            acceptor_address=part(
                header.cbAcceptorLength, header.dwAcceptorOffset, "acceptor address"
            ),
            application_data=part(
                header.cbApplicationDataLength,
                header.dwApplicationDataOffset,
                "application data",
            ),
        )

    @property
    def initiator_addr_type(self) -> int:
        """``dwInitiatorAddrType`` (a ``GSS_C_AF_*`` value; 0 is unspecified)."""
        return self._initiator_addr_type

    @property
    def initiator_address(self) -> bytes:
        """The initiator's address bytes (usually empty)."""
        return self._initiator_address

    @property
    def acceptor_addr_type(self) -> int:
        """``dwAcceptorAddrType`` (a ``GSS_C_AF_*`` value; 0 is unspecified)."""
        return self._acceptor_addr_type

    @property
    def acceptor_address(self) -> bytes:
        """The acceptor's address bytes (usually empty)."""
        return self._acceptor_address

    @property
    def application_data(self) -> bytes:
        """The application data (for TLS: ``b"tls-server-end-point:" + hash``)."""
        return self._application_data

    def to_bytes(self) -> bytes:
        """The contiguous ``SEC_CHANNEL_BINDINGS`` block SSPI reads: header, then data.

        The data follow the header in field order (initiator address, acceptor address,
        application data); an empty part has length 0 and offset 0.
        """
        header = SEC_CHANNEL_BINDINGS()
        body = bytearray()
        parts = (
            ("Initiator", self._initiator_addr_type, self._initiator_address),
            ("Acceptor", self._acceptor_addr_type, self._acceptor_address),
        )
        for name, addr_type, data in parts:
            setattr(header, f"dw{name}AddrType", addr_type)
            setattr(header, f"cb{name}Length", len(data))
            setattr(header, f"dw{name}Offset", _HEADER + len(body) if data else 0)
            body += data
        header.cbApplicationDataLength = len(self._application_data)
        header.dwApplicationDataOffset = _HEADER + len(body) if self._application_data else 0
        body += self._application_data
        return bytes(header) + bytes(body)

    __bytes__ = to_bytes

    def _key(self) -> tuple[int, bytes, int, bytes, bytes]:
        return (
            self._initiator_addr_type,
            self._initiator_address,
            self._acceptor_addr_type,
            self._acceptor_address,
            self._application_data,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChannelBindings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("ChannelBindings is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("ChannelBindings is immutable")

    def __reduce__(self) -> tuple[object, ...]:
        return (ChannelBindings.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        data = self._application_data
        if data.startswith(_TLS_SERVER_END_POINT):
            shown = f"tls-server-end-point:<{len(data) - len(_TLS_SERVER_END_POINT)}-byte hash>"
        else:
            shown = f"<{len(data)} bytes>"
        return (
            f"ChannelBindings(initiator_addr_type={self._initiator_addr_type}, "
            f"initiator_address=<{len(self._initiator_address)} bytes>, "
            f"acceptor_addr_type={self._acceptor_addr_type}, "
            f"acceptor_address=<{len(self._acceptor_address)} bytes>, "
            f"application_data={shown})"
        )


def _hash_for(der: bytes) -> str:
    """The hash RFC 5929 binds a certificate with: its signature's, SHA-256 for MD5/SHA-1."""
    oid, parameters = signature_algorithm(der)
    if oid in _SIGNATURE_HASHES:
        return _SIGNATURE_HASHES[oid]
    if oid == _RSASSA_PSS:
        hash_oid = pss_hash_algorithm(parameters)
        if hash_oid is None:
            return "sha256"  # hashAlgorithm DEFAULT sha1, bound with SHA-256
        if hash_oid not in _HASHES:
            raise ValueError(
                f"unknown RSASSA-PSS hash algorithm {hash_oid}: cannot choose the hash"
            )
        return _HASHES[hash_oid]
    if oid in _NO_SINGLE_HASH:
        raise ValueError(
            f"RFC 5929 defines no tls-server-end-point hash for {_NO_SINGLE_HASH[oid]} "
            "certificates: there are no channel bindings to compute"
        )
    raise ValueError(f"unknown certificate signature algorithm {oid}: cannot choose the hash")
