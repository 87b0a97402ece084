"""What every security context can do once it exists, established or imported.

``ContextOperations`` is the one implementation of the attribute queries
(``QueryContextAttributesW``), the message calls (``MakeSignature``, ``VerifySignature``,
``EncryptMessage``, ``DecryptMessage``) and impersonation; ``SecurityContextBase`` in
``contexts`` derives from it, so ``SecurityContext`` and ``ImportedContext`` share it.

Memory rules: SSPI only reads the caller's data for ``sign``/``verify``, so it gets the
caller's own buffer (``_buffers.readable``, no copy); ``EncryptMessage`` and
``DecryptMessage`` work in place, so they get private writable ctypes copies, wiped
after use. Every buffer SSPI allocates for an attribute is freed with
``FreeContextBuffer`` in ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import struct
from collections.abc import Iterator
from ctypes import byref, c_uint16, c_uint32, c_void_p
from dataclasses import dataclass
from typing import Any

from ._buffers import readable
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import (
    SecBuffer,
    SecBufferDesc,
    SecHandle,
    SecPkgContext_Flags,
    SecPkgContext_Lifespan,
    SecPkgContext_NamesW,
    SecPkgContext_NegotiationInfoW,
    SecPkgContext_PackageInfoW,
    SecPkgContext_SessionKey,
    SecPkgContext_Sizes,
)
from .errors import InternalError, SspiError, status_info

__all__ = ["NEVER", "ContextOperations", "ContextSizes", "filetime_to_datetime", "read_utf16z"]

_EPOCH_1601 = datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)
NEVER = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
"""What a 'never expires' time stamp becomes (``0x7FFFFFFFFFFFFFFF`` and anything else
past year 9999, such as Kerberos' ``0x7FFFFF36D5969FFF``)."""
_MAX_TICKS = (NEVER - _EPOCH_1601) // datetime.timedelta(microseconds=1) * 10
_TRAILER_LENGTH = struct.Struct("<I")
_INTERNAL_ERROR = status_info("SEC_E_INTERNAL_ERROR").status  # type: ignore[union-attr]


def filetime_to_datetime(ticks: int) -> datetime.datetime | None:
    """An aware UTC ``datetime`` from FILETIME ticks (100 ns since 1601).

    ``None`` for 0 or less (the provider reported no time: sspi-rs does this), and
    ``NEVER`` (``datetime.max`` in UTC) for values past what ``datetime`` can hold.
    """
    if ticks <= 0:
        return None
    if ticks >= _MAX_TICKS:
        return NEVER
    return _EPOCH_1601 + datetime.timedelta(microseconds=ticks // 10)


def read_utf16z(address: int) -> str:
    """Decode the NUL-terminated UTF-16LE string SSPI returned at ``address``.

    Not ``ctypes.wstring_at``: ``wchar_t`` is 4 bytes outside Windows.
    """
    units = ctypes.cast(address, ctypes.POINTER(c_uint16))
    length = 0
    while units[length]:
        length += 1
    return ctypes.string_at(address, 2 * length).decode("utf-16-le", "surrogatepass")


@dataclass(frozen=True)
class ContextSizes:
    """``SECPKG_ATTR_SIZES`` of a context, in bytes."""

    max_token: int
    """Largest token the handshake can produce."""
    max_signature: int
    """Largest signature ``sign`` returns (0: the context cannot sign)."""
    block_size: int
    """Messages are padded to a multiple of this (0 or 1: no padding)."""
    security_trailer: int
    """Largest trailer ``encrypt`` adds (0: the context cannot encrypt)."""


def _message_buffers(*buffers: SecBuffer) -> tuple[SecBufferDesc, Any]:
    array = (SecBuffer * len(buffers))(*buffers)
    return SecBufferDesc(C.SECBUFFER_VERSION, len(buffers), array), array


def _writable_copy(data: object, what: str) -> Any:
    """A private, writable ctypes copy of ``data`` for calls that work in place."""
    keepalive, address, length = readable(data, what)
    copy = (ctypes.c_char * length)()
    ctypes.memmove(copy, address, length)
    del keepalive
    return copy


class ContextOperations(OwnedHandle[SecHandle]):
    """Attribute queries, message protection and impersonation on an owned context."""

    __slots__ = ("_sizes",)
    _sizes: ContextSizes  # set on first sizes(); ImportedContext.__init__ leaves it unset

    @property
    def package(self) -> str | None:
        """The security package the context belongs to, when known."""
        return None

    # Attributes -------------------------------------------------------------------

    def _query(self, attribute: int, out: ctypes.Structure) -> None:
        self._lib.QueryContextAttributesW(byref(self._live()), attribute, byref(out))

    @property
    def user_name(self) -> str:
        r"""The authenticated user, as the package names it (NTLM: ``DOMAIN\user``)."""
        names = SecPkgContext_NamesW()
        self._query(C.SECPKG_ATTR_NAMES, names)
        try:
            return read_utf16z(names.sUserName) if names.sUserName else ""
        finally:
            if names.sUserName:
                self._lib.FreeContextBuffer(names.sUserName)

    @property
    def package_name(self) -> str:
        """The package the provider says the context uses; for Negotiate, the one it chose.

        Negotiate contexts are asked for ``SECPKG_ATTR_NEGOTIATION_INFO`` first, falling
        back to ``SECPKG_ATTR_PACKAGE_INFO``; the name to import an export with is this.
        """
        known = self.package
        if known is not None and known.lower() == "negotiate":
            with contextlib.suppress(SspiError):
                return self._negotiated_package()
        info = SecPkgContext_PackageInfoW()
        self._query(C.SECPKG_ATTR_PACKAGE_INFO, info)
        name = self._package_info_name(info.PackageInfo)
        if name.lower() == "negotiate" and known is None:
            with contextlib.suppress(SspiError):
                return self._negotiated_package()
        return name

    def _negotiated_package(self) -> str:
        info = SecPkgContext_NegotiationInfoW()
        self._query(C.SECPKG_ATTR_NEGOTIATION_INFO, info)
        return self._package_info_name(info.PackageInfo)

    def _package_info_name(self, pointer: Any) -> str:
        if not pointer:
            raise InternalError(_INTERNAL_ERROR, "QueryContextAttributesW", "no package info")
        try:
            name = pointer.contents.Name
            return read_utf16z(name) if name else ""
        finally:
            self._lib.FreeContextBuffer(ctypes.cast(pointer, c_void_p))

    def sizes(self) -> ContextSizes:
        """Token, signature, block and trailer sizes (``SECPKG_ATTR_SIZES``), asked once."""
        cached: ContextSizes | None = getattr(self, "_sizes", None)
        if cached is None:
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
        self._query(C.SECPKG_ATTR_SESSION_KEY, raw)
        if not raw.SessionKey:
            return b""
        try:
            return ctypes.string_at(raw.SessionKey, raw.SessionKeyLength)
        finally:
            ctypes.memset(raw.SessionKey, 0, raw.SessionKeyLength)  # SSPI's copy, ours now
            self._lib.FreeContextBuffer(raw.SessionKey)

    @property
    def flags(self) -> int:
        """The context's attribute flags as the package reports them (``SECPKG_ATTR_FLAGS``).

        ``ISC_RET_*`` bits for the initiator's side, ``ASC_RET_*`` for the acceptor's.
        """
        raw = SecPkgContext_Flags()
        self._query(C.SECPKG_ATTR_FLAGS, raw)
        return int(raw.Flags)

    # Messages ---------------------------------------------------------------------

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        """Sign ``data`` (``MakeSignature``) and return the signature alone.

        The peer checks it with ``verify(data, signature)``. The package numbers the
        messages itself (``MessageSeqNo`` 0), so verify them in the order signed.
        """
        keepalive, address, length = readable(data, "message")
        signature = (ctypes.c_char * self.sizes().max_signature)()
        desc, array = _message_buffers(
            SecBuffer(length, C.SECBUFFER_DATA, address),
            SecBuffer(len(signature), C.SECBUFFER_TOKEN, ctypes.addressof(signature)),
        )
        self._lib.MakeSignature(byref(self._live()), 0, byref(desc), 0)
        del keepalive
        return ctypes.string_at(array[1].pvBuffer, array[1].cbBuffer)

    def verify(
        self, data: bytes | bytearray | memoryview, signature: bytes | bytearray | memoryview
    ) -> None:
        """Check ``signature`` over ``data`` (``VerifySignature``).

        Returns nothing; raises ``MessageAlteredError`` when either was tampered with
        and ``OutOfSequenceError`` for a replayed or missing message.
        """
        keep_data, data_address, data_length = readable(data, "message")
        keep_sig, sig_address, sig_length = readable(signature, "signature")
        desc, array = _message_buffers(
            SecBuffer(data_length, C.SECBUFFER_DATA, data_address),
            SecBuffer(sig_length, C.SECBUFFER_TOKEN, sig_address),
        )
        quality = c_uint32()
        self._lib.VerifySignature(byref(self._live()), byref(desc), 0, byref(quality))
        del keep_data, keep_sig, array

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt ``data`` (``EncryptMessage``) into one self-describing message.

        Wire layout (what ``decrypt`` reads)::

            trailer length (4 bytes, little-endian) | trailer | ciphertext | padding

        The trailer is the ``SECBUFFER_TOKEN`` SSPI filled (its real length, which can
        be shorter than ``sizes().security_trailer``); the padding is empty for stream
        ciphers such as NTLM's RC4.
        """
        sizes = self.sizes()
        message = _writable_copy(data, "message")
        trailer = (ctypes.c_char * sizes.security_trailer)()
        padding = (ctypes.c_char * max(sizes.block_size, 1))()
        desc, array = _message_buffers(
            SecBuffer(len(trailer), C.SECBUFFER_TOKEN, ctypes.addressof(trailer)),
            SecBuffer(len(message), C.SECBUFFER_DATA, ctypes.addressof(message)),
            SecBuffer(sizes.block_size, C.SECBUFFER_PADDING, ctypes.addressof(padding)),
        )
        try:
            self._lib.EncryptMessage(byref(self._live()), 0, byref(desc), 0)
            parts = [ctypes.string_at(b.pvBuffer, b.cbBuffer) if b.cbBuffer else b"" for b in array]
        finally:
            ctypes.memset(message, 0, len(message))  # plaintext if the call failed
        return _TRAILER_LENGTH.pack(len(parts[0])) + b"".join(parts)

    def decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """Decrypt a message ``encrypt`` produced on the peer (``DecryptMessage``).

        Raises ``ValueError`` for a message too short for its own layout, and the
        provider's error (``MessageAlteredError`` on tampering) when SSPI rejects it.
        """
        whole = _writable_copy(data, "message")
        try:
            raw = bytes(whole)
            if len(raw) < _TRAILER_LENGTH.size:
                raise ValueError("the message is shorter than its 4-byte trailer length")
            (trailer_length,) = _TRAILER_LENGTH.unpack_from(raw)
            start = _TRAILER_LENGTH.size + trailer_length
            if start > len(raw):
                raise ValueError(
                    f"the message says its trailer is {trailer_length} bytes but holds "
                    f"only {len(raw) - _TRAILER_LENGTH.size}"
                )
            base = ctypes.addressof(whole)
            desc, array = _message_buffers(
                SecBuffer(trailer_length, C.SECBUFFER_TOKEN, base + _TRAILER_LENGTH.size),
                SecBuffer(len(raw) - start, C.SECBUFFER_DATA, base + start),
            )
            quality = c_uint32()
            self._lib.DecryptMessage(byref(self._live()), byref(desc), 0, byref(quality))
            for buffer in array:
                if buffer.BufferType == C.SECBUFFER_DATA:
                    return ctypes.string_at(buffer.pvBuffer, buffer.cbBuffer)
            raise InternalError(_INTERNAL_ERROR, "DecryptMessage", "no data buffer came back")
        finally:
            ctypes.memset(whole, 0, len(whole))  # decrypted in place: plaintext

    # Impersonation ----------------------------------------------------------------

    @contextlib.contextmanager
    def impersonate(self) -> Iterator[None]:
        """Run the ``with`` body as the client (``ImpersonateSecurityContext``).

        Always reverts (``RevertSecurityContext``), also when the body raises.
        Impersonation is per thread: only the calling thread runs as the client.
        """
        handle = self._live()
        self._lib.ImpersonateSecurityContext(byref(handle))
        try:
            yield
        finally:
            self._lib.RevertSecurityContext(byref(handle))
