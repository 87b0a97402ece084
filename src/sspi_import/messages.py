"""Message protection on every context, in every layout real peers use.

- ``wrap``/``unwrap``: ``token || data || padding``, the layout of GSS-API wrap, SASL,
  LDAP and SMB, and of sspilib's and pyspnego's ``wrap``. ``unwrap`` hands the whole
  message to SSPI as ``SECBUFFER_STREAM`` + ``SECBUFFER_DATA`` and the provider splits it.
- ``encrypt``/``decrypt`` (and ``encrypt_into``/``decrypt_in_place``): ``trailer length
  (4 bytes LE) || trailer || ciphertext || padding``, the layout WinRM uses (MS-WSMV's
  encrypted body, as pywinrm, pypsrp and pyspnego's ``wrap_winrm``/``unwrap_winrm``
  frame it). ``decrypt`` refuses a declared trailer length that cannot be right for
  the context before SSPI sees the frame, so a framing mistake cannot desynchronize it.
- ``wrap_iov``/``unwrap_iov``: the caller's own list of buffers (``IovBuffer``), for
  protocols that keep token and data apart (DCE/RPC, SMB, WinRM).
- ``sign``/``verify``: a detached signature.

Every call holds the context's
lock (``OwnedHandle``), so calls on one context are serialized: NTLM's sealing state
(RC4 stream, sequence numbers) moves with each message, and providers are not safe for
concurrent calls on one context.

Memory rules: SSPI only reads the caller's data for ``sign``/``verify``, so it gets the
caller's own buffer (``_buffers.readable``, no copy). ``EncryptMessage`` and
``DecryptMessage`` work in place: ``encrypt`` copies the plaintext once, into the new
``bytes`` object it returns (trailer length and trailer room first, exactly the wire
layout), and SSPI encrypts it there; ``decrypt`` copies the trailer and the ciphertext
into new objects and returns the decrypted one as it is (``_cpython.fresh_bytes``). The
caller's objects are never written. A copy that still holds plaintext when the call
fails, or that is not the result, is zeroed. ``encrypt_into`` and ``decrypt_in_place``
work in the caller's own writable buffer instead.
"""

from __future__ import annotations

import builtins
import ctypes
import enum
import struct
from collections.abc import Callable, Iterable
from ctypes import byref, c_uint32
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from ._buffers import MAX_BUFFER, Blob, WritableBlob, copyable, readable, writable
from ._checks import boolean, integer, size, ulong
from ._cpython import fresh_bytes, fresh_copy, fresh_slices
from ._handle import OwnedHandle
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.status_codes import SEC_E_INTERNAL_ERROR
from ._raw.structs import SecHandle
from ._secbuffers import MAX_BUFFERS, Descriptor
from .errors import InternalError, SspiError, UnencryptedMessageError

if TYPE_CHECKING:
    from .context import ContextSizes

__all__ = [
    "BufferType",
    "IovBuffer",
    "IovOutput",
    "IovResult",
    "MessageProtection",
    "UnencryptedMessageError",
]

_TRAILER_LENGTH = struct.Struct("<I")
_PREFIX = _TRAILER_LENGTH.size  # a sealed message starts with its trailer length
_DATA = C.SECBUFFER_DATA
_TOKEN = C.SECBUFFER_TOKEN
_PADDING = C.SECBUFFER_PADDING
_STREAM = C.SECBUFFER_STREAM
_NO_ENCRYPT = C.SECQOP_WRAP_NO_ENCRYPT
_CONFIDENTIALITY = C.ISC_RET_CONFIDENTIALITY  # == ASC_RET_CONFIDENTIALITY (and the REQ bits)
_ENCRYPT, _DECRYPT = "EncryptMessage", "DecryptMessage"


def _copy_out(address: int, length: int) -> bytes:
    return ctypes.string_at(address, length) if length else b""


def _assemble(t_len: int, t_at: int, d_len: int, d_at: int, p_len: int, p_at: int) -> bytes:
    """The WinRM message from wherever the provider left token, data and padding."""
    return (
        _TRAILER_LENGTH.pack(t_len)
        + _copy_out(t_at, t_len)
        + _copy_out(d_at, d_len)
        + _copy_out(p_at, p_len)
    )


def _data_place(opened: tuple[int, ...]) -> tuple[int, int]:
    """``(length, address)`` of the ``SECBUFFER_DATA`` buffer, from a decrypt's ``read_out[2]``."""
    length0, type0, at0, length1, type1, at1, _qop = opened
    if type1 == _DATA:  # where DecryptMessage leaves it; the first, by some providers
        return length1, at1
    if type0 == _DATA:
        return length0, at0
    raise InternalError(SEC_E_INTERNAL_ERROR, _DECRYPT, "no data buffer came back")


def _wrap_qop(encrypt: object, qop: object) -> int:
    """The ``fQOP`` for ``EncryptMessage``: ``qop``, plus sign-only when not encrypting."""
    encrypting = boolean(encrypt, "encrypt")
    value = ulong(qop, "qop")
    if encrypting and value & _NO_ENCRYPT == _NO_ENCRYPT:
        raise ValueError("qop asks for SECQOP_WRAP_NO_ENCRYPT: pass encrypt=False instead")
    return value if encrypting else value | _NO_ENCRYPT


def _whole_message(data: object) -> tuple[Any, int]:
    """``(source, length)`` for ``wrap``: any bytes-like object, empty included."""
    if type(data) is bytes:
        if len(data) > MAX_BUFFER:
            copyable(data, "message")  # raises
        return data, len(data)
    if isinstance(data, bytearray | memoryview) and memoryview(data).nbytes == 0:
        return b"", 0
    return copyable(data, "message")


class BufferType(enum.IntEnum):
    """``SecBuffer.BufferType`` values ``wrap_iov`` and ``unwrap_iov`` take (sspi.h)."""

    EMPTY = C.SECBUFFER_EMPTY
    """Nothing; the provider may fill it (an output it reports)."""
    DATA = C.SECBUFFER_DATA
    """The message: encrypted and signed in place."""
    TOKEN = C.SECBUFFER_TOKEN
    """The security token (signature, Kerberos header); ``None`` sizes it to the trailer."""
    PADDING = C.SECBUFFER_PADDING
    """Block-cipher padding; ``None`` sizes it to ``sizes().block_size``."""
    STREAM = C.SECBUFFER_STREAM
    """A whole ``token || data`` message for ``unwrap_iov``; the provider splits it."""
    READONLY = C.SECBUFFER_DATA | C.SECBUFFER_READONLY
    """Data the provider only reads: not encrypted (``SECBUFFER_DATA | SECBUFFER_READONLY``)."""
    READONLY_WITH_CHECKSUM = C.SECBUFFER_DATA | C.SECBUFFER_READONLY_WITH_CHECKSUM
    """Data signed but not encrypted, such as a DCE/RPC PDU header
    (``SECBUFFER_DATA | SECBUFFER_READONLY_WITH_CHECKSUM``)."""


IovData = bytes | bytearray | memoryview | int | None


class IovBuffer:
    """One ``SecBuffer`` of a ``wrap_iov``/``unwrap_iov`` call: its type and its bytes.

    As input, ``data`` is one of:

    - a writable buffer (``bytearray``, writable ``memoryview``): handed to SSPI as it
      is, and written in place (zero-copy, like ``encrypt_into``);
    - ``bytes`` (or a read-only view): copied into a private buffer first, never written;
    - an ``int``: a new zeroed buffer of that many bytes (room for the provider);
    - ``None``: ``TOKEN`` gets ``sizes().security_trailer`` bytes, ``PADDING``
      ``sizes().block_size``, any other type none (an output the provider points).

    As output (``IovResult.buffers``), ``data`` is what the provider left in the buffer:
    a ``memoryview`` of the caller's writable buffer where it lies there, else ``bytes``.
    """

    __slots__ = ("data", "type")
    type: BufferType
    data: IovData

    def __init__(self, type: BufferType, data: IovData = None) -> None:
        try:
            kind = BufferType(integer(type, "the buffer type"))
        except ValueError:
            raise ValueError(
                f"unknown buffer type {type!r}; use a sspi_import.BufferType member"
            ) from None
        if isinstance(data, int) or data is None:
            if data is not None:
                size(data, "a buffer size", MAX_BUFFER)
        elif not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                "IovBuffer data must be bytes, bytearray, memoryview, a size or None, "
                f"not {builtins.type(data).__name__}"
            )
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "data", data)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("IovBuffer is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("IovBuffer is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IovBuffer):
            return NotImplemented
        return (self.type, self.data) == (other.type, other.data)

    def __hash__(self) -> int:
        return hash((self.type, self.data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (IovBuffer, (self.type, self.data))

    def __repr__(self) -> str:
        """Type and length only: the bytes may be plaintext."""
        data = self.data
        size = data if isinstance(data, int) or data is None else memoryview(data).nbytes
        return f"IovBuffer({self.type.name}, {size!r} bytes)"


class IovOutput(IovBuffer):
    """An ``IovBuffer`` of ``IovResult.buffers``: its ``data`` is what the provider left.

    A ``memoryview`` of the caller's writable buffer where the bytes lie there, else
    ``bytes``: never a size or ``None``, so ``bytes(out.data)`` and ``len(out.data)``
    type-check as they run.
    """

    __slots__ = ()
    data: bytes | memoryview

    def __reduce__(self) -> tuple[Any, ...]:
        return (IovOutput, (self.type, self.data))


class IovResult(NamedTuple):
    """What ``wrap_iov``/``unwrap_iov`` return: the buffers as the provider left them."""

    buffers: tuple[IovOutput, ...]
    """One per input buffer, in order, with the type and bytes the provider reported."""
    qop: int
    """The QOP: the one used (``wrap_iov``) or the one ``DecryptMessage`` reported."""

    @property
    def encrypted(self) -> bool:
        """``False`` when the QOP says sign-only (``SECQOP_WRAP_NO_ENCRYPT``)."""
        return not self.qop & _NO_ENCRYPT

    def __repr__(self) -> str:
        """Buffer types and lengths, never their bytes."""
        return f"IovResult(buffers={list(self.buffers)!r}, qop=0x{self.qop:08X})"


class MessageProtection(OwnedHandle[SecHandle]):
    """Message protection in every layout, on every context.

    ``wrap``/``unwrap`` (token || data), ``encrypt``/``decrypt`` (WinRM),
    ``wrap_iov``/``unwrap_iov`` (the caller's buffers), ``sign``/``verify``.

    What a context must tell about itself for that (``sizes``, ``package``,
    ``package_name``, ``flags``) is declared here and defined by ``SecurityContextBase``.
    Each context reuses one prepared descriptor (``_secbuffers``) from one message to
    the next, filled and read back under its lock (``_call_bare``).
    """

    _sizes: ContextSizes | None = None  # the first sizes() answer, kept
    _seal: tuple[int, int, bytes] | None = None  # trailer, block size, head of a message
    _frame: tuple[int, bool] | None = None  # largest trailer, NTLM (exact): first decrypt
    _desc: Descriptor | None = None  # for encrypt/decrypt, wrap/unwrap: _descriptor()

    # What every context defines ---------------------------------------------------------

    @property
    def package(self) -> str | None:  # pragma: no cover - defined by SecurityContextBase
        """The package the context belongs to, when known."""
        raise NotImplementedError

    @property
    def package_name(self) -> str:  # pragma: no cover - defined by SecurityContextBase
        """The package the provider says the context uses."""
        raise NotImplementedError

    @property
    def flags(self) -> int:  # pragma: no cover - defined by SecurityContextBase
        """The context's attribute flags."""
        raise NotImplementedError

    def sizes(self) -> ContextSizes:  # pragma: no cover - defined by SecurityContextBase
        """Token, signature, block and trailer sizes of the context."""
        raise NotImplementedError

    # Per-context state, asked for once --------------------------------------------------

    def _cached_sizes(self) -> ContextSizes:
        sizes = self._sizes
        return sizes if sizes is not None else self.sizes()

    def _check_ready(self) -> None:
        """Refuse message protection on a context not ready for it (a handshake underway).

        Called where a context's first message call sets up what later ones reuse
        (``_sealing``, ``_frame_rule``, ``_descriptor``), so it costs them nothing.
        """

    def _sealing(self) -> tuple[int, int, bytes]:
        """``(trailer, block size, trailer length || trailer room)``: what encrypt needs."""
        self._check_ready()
        sizes = self._cached_sizes()
        trailer = sizes.security_trailer
        seal = (trailer, sizes.block_size, _TRAILER_LENGTH.pack(trailer) + bytes(trailer))
        self._seal = seal
        return seal

    def _descriptor(self) -> Descriptor:
        """The context's descriptor for the message calls (``self._desc or`` this, first)."""
        self._check_ready()
        desc = Descriptor(3, bare=True)
        desc.prepare()
        self._desc = desc  # two threads may both make one: each call uses the one it read
        return desc

    def _frame_rule(self) -> tuple[int, bool]:
        """What a WinRM frame's declared trailer length may be: ``(largest, exact)``.

        At most ``sizes().security_trailer``; for NTLM (also when Negotiate chose it)
        exactly that, since an NTLM signature has one size (16 bytes on Windows and
        sspi-rs). Asked once per context.
        """
        self._check_ready()
        limit = self._cached_sizes().security_trailer
        package = self.package
        if package is None or package.lower() == "negotiate":
            try:
                package = self.package_name
            except SspiError:  # no package info: only the size limit applies
                package = None
        rule = (limit, package is not None and package.lower() == "ntlm")
        self._frame = rule
        return rule

    def _trailer(self, message: Any, length: int) -> int:
        """The trailer length a WinRM message declares, checked before SSPI sees it.

        Refused if it cannot be right: past the message's end, or not what this
        context's trailers can be (``_frame_rule``).
        """
        if length < _PREFIX:
            raise ValueError("the message is shorter than its 4-byte trailer length")
        declared: int = _TRAILER_LENGTH.unpack_from(message)[0]
        if _PREFIX + declared > length:
            raise ValueError(
                f"the message says its trailer is {declared} bytes "
                f"but holds only {length - _PREFIX}"
            )
        limit, exact = self._frame or self._frame_rule()
        if declared == limit or not (exact or declared > limit):
            return declared
        if exact:
            expected = f"an NTLM trailer is exactly {limit} bytes"
        else:
            expected = f"this context's trailers are at most {limit} bytes"
        hint = ""
        if declared < limit:
            hint = (
                "; a message from wrap() (sspilib, pyspnego, GSS-API: token || data) "
                "has no length prefix: open it with unwrap()"
            )
        raise ValueError(
            f"the message declares a {declared}-byte trailer, but {expected}: it is not "
            f"a WinRM-layout frame, so it was not handed to SSPI{hint}"
        )

    def _confidential(self) -> bool:
        """Whether the context negotiated confidentiality; ``True`` when it cannot say."""
        try:
            return bool(int(self.flags) & _CONFIDENTIALITY)
        except SspiError:
            return True  # fail closed: refuse what may be a downgrade

    def _refuse_unencrypted(self, qop: int, allow: bool) -> None:
        """Refuse a sign-only message the caller did not allow, if confidentiality was on.

        Raises ``UnencryptedMessageError(qop)``. Called only when ``qop`` says sign-only
        (``qop & _NO_ENCRYPT``): opening an encrypted message pays a test, not a call.
        """
        if not allow and self._confidential():
            raise UnencryptedMessageError(qop)

    def _refuse_closed(self) -> None:
        """Fail early, before plaintext is copied; the call itself checks again, locked."""
        if self._handle is None:
            raise self._closed_error()

    # Detached signatures ---------------------------------------------------------------

    def sign(self, data: Blob) -> bytes:
        """Sign ``data`` (``MakeSignature``) and return the signature alone.

        The peer checks it with ``verify(data, signature)``. The package numbers the
        messages itself (``MessageSeqNo`` 0), so verify them in the order signed.
        """
        keepalive, address, length = readable(data, "message")
        signature = (ctypes.c_char * self._cached_sizes().max_signature)()
        desc = Descriptor(2)
        desc.fill(2, length, _DATA, address, len(signature), _TOKEN, ctypes.addressof(signature))
        self._call("MakeSignature", 0, desc.memory, 0)
        del keepalive
        _d_len, _d_at, s_len, s_at = desc.places(2)
        return ctypes.string_at(s_at, s_len)

    def verify(self, data: Blob, signature: Blob) -> None:
        """Check ``signature`` over ``data`` (``VerifySignature``).

        Returns nothing; raises ``MessageAlteredError`` when either was tampered with
        and ``OutOfSequenceError`` for a replayed or missing message.
        """
        keep_data, data_address, data_length = readable(data, "message")
        keep_sig, sig_address, sig_length = readable(signature, "signature")
        desc = Descriptor(2)
        desc.fill(2, data_length, _DATA, data_address, sig_length, _TOKEN, sig_address)
        self._call("VerifySignature", desc.memory, 0, byref(c_uint32()))
        del keep_data, keep_sig

    # The WinRM layout: trailer length || trailer || ciphertext || padding ---------------

    def encrypted_size(self, length: int) -> int:
        """The most bytes ``encrypt`` returns, and ``encrypt_into`` needs, for ``length`` bytes.

        ``4 + sizes().security_trailer + length + sizes().block_size``: the trailer
        length, the largest trailer, the message and the largest padding. The message
        ``encrypt_into`` writes is usually shorter by the block size (no padding).
        """
        length = size(length, "the message length", MAX_BUFFER)
        sizes = self._cached_sizes()
        return _PREFIX + sizes.security_trailer + length + sizes.block_size

    def encrypt(self, data: Blob) -> bytes:
        """Encrypt ``data`` (``EncryptMessage``) into one message in the WinRM layout.

        The layout of MS-WSMV's encrypted body, as pywinrm, pypsrp and pyspnego's
        ``wrap_winrm``/``unwrap_winrm`` frame it. For GSS-API wrap, SASL, LDAP or SMB
        peers (sspilib's and pyspnego's ``wrap``) use ``wrap`` instead. Wire layout
        (what ``decrypt`` reads)::

            trailer length (4 bytes, little-endian) | trailer | ciphertext | padding

        The trailer is the ``SECBUFFER_TOKEN`` SSPI filled (its real length, which can
        be shorter than ``sizes().security_trailer``); the padding is empty for stream
        ciphers such as NTLM's RC4. ``data`` is not changed; to write the message into
        a buffer of your own instead, use ``encrypt_into``.

        The trailer length is framing, outside what SSPI authenticates: if it is changed
        in transit, ``decrypt`` fails, or, with a provider that reads trailer and
        ciphertext as one stream (sspi-rs does), still returns the original plaintext.
        The trailer and the ciphertext cannot be changed undetected.
        """
        trailer, block, head = self._seal or self._sealing()
        source, length = copyable(data, "message")
        self._refuse_closed()  # before the plaintext is copied
        # Sealed in place in the bytes object returned: a new object that nobody else
        # has seen yet (_cpython.fresh_bytes).
        fresh = fresh_bytes(head, source)
        if fresh is None:  # not CPython: seal in a bytearray, copy out once
            out = bytearray(_PREFIX + trailer + length + block)
            with memoryview(out) as view:
                return bytes(view[: self.encrypt_into(source, out)])
        sealed, sealed_at = fresh
        token_at = sealed_at + _PREFIX
        data_at = token_at + trailer
        try:  # from here on, an interrupt finds the plaintext copy to wipe
            desc = self._desc or self._descriptor()
            # Padding is read after the lock: a buffer of this call's (no block: an empty
            # one, at a valid address, as encrypt_into places it).
            spare = bytearray(block) if block else None
            padding_at = data_at + length if spare is None else _address_of(spare)
            fields = (
                trailer, _TOKEN, token_at, length, _DATA, data_at, block, _PADDING, padding_at
            )  # fmt: skip
            t_len, t_at, d_len, d_at, p_len, p_at = self._call_bare(
                self._lib.EncryptMessage_bare, _ENCRYPT, 0, desc.pointer, 0,
                desc.fills[3], fields, desc.places_of[3], desc.memory,
            )  # fmt: skip
        except BaseException:
            ctypes.memset(data_at, 0, length)  # still the plaintext
            raise
        if (
            t_len == trailer
            and t_at == token_at
            and not p_len
            and d_len == length
            and d_at == data_at
        ):
            return sealed
        message = _assemble(t_len, t_at, d_len, d_at, p_len, p_at)
        ctypes.memset(data_at, 0, length)  # plaintext, if the provider wrote elsewhere
        return message

    def encrypt_into(self, data: Blob, out: WritableBlob) -> int:
        """Encrypt ``data`` into the start of ``out``; return the message's length.

        Writes exactly what ``encrypt`` returns (same wire layout) into ``out``, a
        writable buffer such as a ``bytearray`` (reusable from one message to the next)
        of at least ``encrypted_size(len(data))`` bytes, and copies nothing else: the
        plaintext is copied once into ``out`` and encrypted there. ``data`` may itself
        be a view of ``out`` (any overlap is handled). The bytes of ``out`` after the
        returned length are unspecified. If SSPI fails, the plaintext copied into
        ``out`` is zeroed before the error is raised.

        Raises ``TypeError`` for a read-only ``out`` (``bytes``) and ``ValueError`` when
        ``out`` is too small.
        """
        trailer, block, _head = self._seal or self._sealing()
        target, base, room = writable(out, "output buffer")
        source, length = copyable(data, "message")
        needed = _PREFIX + trailer + length + block
        if room < needed:
            raise ValueError(
                f"the output buffer holds {room} bytes; encrypting {length} bytes needs "
                f"{needed} (encrypted_size({length}))"
            )
        self._refuse_closed()  # before the plaintext is copied
        token_at = base + _PREFIX
        data_at = token_at + trailer
        start = _PREFIX + trailer
        # First, as data may overlap out: a memoryview slice assignment is a memmove in
        # C (overlap-safe), without the ffi round trip of ctypes.memmove.
        target[start : start + length] = source
        del source
        _TRAILER_LENGTH.pack_into(target, 0, trailer)
        desc = self._desc or self._descriptor()
        padding_at = data_at + length
        fields = (trailer, _TOKEN, token_at, length, _DATA, data_at, block, _PADDING, padding_at)
        try:
            t_len, t_at, d_len, d_at, p_len, p_at = self._call_bare(
                self._lib.EncryptMessage_bare, _ENCRYPT, 0, desc.pointer, 0,
                desc.fills[3], fields, desc.places_of[3], desc.memory,
            )  # fmt: skip
        except BaseException:
            ctypes.memset(data_at, 0, length)  # the plaintext we copied there
            raise
        exact = t_len == trailer and t_at == token_at and d_len == length and d_at == data_at
        if exact and (not p_len or (p_at == data_at + length and p_len <= block)):
            written: int = needed - block + p_len
            return written
        message = _assemble(t_len, t_at, d_len, d_at, p_len, p_at)
        ctypes.memset(data_at, 0, length)  # plaintext, if the provider wrote elsewhere
        if len(message) > room:
            raise InternalError(
                SEC_E_INTERNAL_ERROR, _ENCRYPT, "the message outgrew encrypted_size"
            )
        ctypes.memmove(base, message, len(message))
        return len(message)

    def decrypt(self, data: Blob, *, allow_unencrypted: bool = False) -> bytes:
        """Decrypt a WinRM-layout message (``encrypt``, pyspnego's ``wrap_winrm``).

        Raises ``ValueError``, before SSPI sees the message, for a message too short
        for its own layout and for a declared trailer length that cannot be right for
        this context: more than ``sizes().security_trailer``, or, for NTLM, anything
        but exactly that (16 bytes). A ``wrap`` message (``token || data``) handed
        here by mistake is refused so, instead of desynchronizing the context's
        sealing state; open it with ``unwrap``. Raises the provider's error
        (``MessageAlteredError`` on tampering) when SSPI rejects the message.
        ``data`` is not changed; to decrypt a writable buffer where it is, without a
        copy, use ``decrypt_in_place``. A message signed but not encrypted is refused on
        a context that negotiated confidentiality, as by ``unwrap`` (see there), unless
        ``allow_unencrypted=True``.
        """
        if allow_unencrypted is not False:
            allow_unencrypted = boolean(allow_unencrypted, "allow_unencrypted")
        source, length = copyable(data, "message")
        trailer = self._trailer(source, length)
        start = _PREFIX + trailer
        body_size = length - start
        # Private copies of the trailer and of the ciphertext, new objects nobody else
        # has seen (_cpython); the ciphertext is decrypted in place and returned as it is.
        if type(source) is bytes:  # sliced: cheaper than a copy from the address
            fresh = fresh_slices(source, _PREFIX, start, length)
        else:  # the caller's writable buffer, copied from its address
            address = _address_of(source)
            token = fresh_copy(address + _PREFIX, trailer)
            ciphertext = fresh_copy(address + start, body_size)
            fresh = None if token is None or ciphertext is None else (*token, *ciphertext)
        if fresh is None:  # too short to be new objects, or not CPython
            return self._decrypt_copy(source, allow_unencrypted)
        _token, token_at, body, body_at = fresh
        desc = self._desc or self._descriptor()
        fields = (trailer, _TOKEN, token_at, body_size, _DATA, body_at)
        try:
            opened = self._call_bare(
                self._lib.DecryptMessage_bare, _DECRYPT, desc.pointer, 0, desc.ulong,
                desc.fills[2], fields, desc.read_out[2], desc.memory,
            )  # fmt: skip
            if opened[6] & _NO_ENCRYPT:  # its plaintext is wiped below if refused
                self._refuse_unencrypted(opened[6], allow_unencrypted)
            d_len, d_at = _data_place(opened)
            if d_at == body_at and d_len == body_size:
                return body
            plain = ctypes.string_at(d_at, d_len)
        except BaseException:
            ctypes.memset(body_at, 0, body_size)  # may be partly decrypted
            raise
        ctypes.memset(body_at, 0, body_size)  # decrypted in place: plaintext
        return plain

    def _decrypt_copy(self, message: Any, allow_unencrypted: bool) -> bytes:
        work = bytearray(message)
        try:
            with self.decrypt_in_place(work, allow_unencrypted=allow_unencrypted) as plain:
                return bytes(plain)
        finally:
            work[:] = bytes(len(work))  # decrypted in place: plaintext

    def decrypt_in_place(
        self, buffer: WritableBlob, *, allow_unencrypted: bool = False
    ) -> memoryview:
        """Decrypt the message in ``buffer`` where it is; return a view of the plaintext.

        ``buffer`` is a writable buffer (``bytearray``, writable ``memoryview``, ``mmap``)
        holding exactly one message ``encrypt`` or ``encrypt_into`` produced on the peer.
        SSPI decrypts it in place: nothing is copied, and the result is a ``memoryview``
        of ``buffer`` covering the plaintext. While that view (or a slice of it) exists,
        a ``bytearray`` cannot change size; release it (``with`` or ``release()``) to
        resize. The other bytes of ``buffer`` (trailer length, trailer) are left as
        they are. If SSPI rejects the message, the ciphertext part of ``buffer`` is
        zeroed (it may hold partly decrypted bytes) and the error is raised.

        A message signed but not encrypted is refused as by ``decrypt``, unless
        ``allow_unencrypted=True``. Raises ``TypeError`` for a read-only buffer
        (``bytes``: use ``decrypt``),
        ``ValueError`` for a message too short for its own layout or whose declared
        trailer length cannot be right for this context (as ``decrypt``).
        """
        if allow_unencrypted is not False:
            allow_unencrypted = boolean(allow_unencrypted, "allow_unencrypted")
        view, base, length = writable(buffer, "message")
        trailer = self._trailer(view, length)
        start = _PREFIX + trailer
        body_size = length - start
        desc = self._desc or self._descriptor()
        fields = (trailer, _TOKEN, base + _PREFIX, body_size, _DATA, base + start)
        try:
            opened = self._call_bare(
                self._lib.DecryptMessage_bare, _DECRYPT, desc.pointer, 0, desc.ulong,
                desc.fills[2], fields, desc.read_out[2], desc.memory,
            )  # fmt: skip
            if opened[6] & _NO_ENCRYPT:  # its plaintext is wiped below if refused
                self._refuse_unencrypted(opened[6], allow_unencrypted)
            d_len, d_at = _data_place(opened)
            if d_len and not base <= d_at <= base + length - d_len:
                # The provider put the plaintext elsewhere: bring it into the buffer.
                if d_len > body_size:
                    raise InternalError(
                        SEC_E_INTERNAL_ERROR, _DECRYPT, "the plaintext outgrew the message"
                    )
                ctypes.memmove(base + start, d_at, d_len)
                d_at = base + start
        except BaseException:
            ctypes.memset(base + start, 0, body_size)
            raise
        first = d_at - base if d_len else start
        return view[first : first + d_len]

    # The standard layout: token || data || padding ----------------------------------

    def wrap(self, data: Blob, *, encrypt: bool = True, qop: int = 0) -> bytes:
        """Protect ``data`` (``EncryptMessage``) as ``token || data || padding``.

        The layout of GSS-API wrap, SASL, LDAP and SMB, byte for byte the one
        sspilib's and pyspnego's ``wrap`` produce: the ``SECBUFFER_TOKEN`` the provider
        filled (its real length), the ciphertext, then the padding (empty for NTLM's
        RC4). There is no length prefix: the peer's ``unwrap`` (or ``gss_unwrap``)
        lets its provider find the token. ``data`` may be empty and is never changed.

        ``encrypt=False`` signs without encrypting (``SECQOP_WRAP_NO_ENCRYPT``; the
        data then travels in the clear, and a peer that negotiated confidentiality
        refuses it by default). ``qop`` is passed to the package as ``fQOP``; it must
        not itself ask for ``SECQOP_WRAP_NO_ENCRYPT``. Whether a package honours a
        sign-only request is its own choice: sspi-rs encrypts anyway, and so does
        Windows NTLM once confidentiality was negotiated (NTLM cannot say "signed
        only" on the wire); ``unwrap`` on the peer reports what the provider saw.
        """
        fqop = _wrap_qop(encrypt, qop)
        trailer, block, _head = self._seal or self._sealing()
        source, length = _whole_message(data)
        self._refuse_closed()  # before the plaintext is copied
        fresh = fresh_bytes(bytes(trailer), source) if trailer and length else None
        if fresh is not None:  # sealed in place in the bytes object returned
            sealed: Any = fresh[0]
            base = fresh[1]
        else:  # empty data, or not CPython: sealed in a bytearray, copied out once
            sealed = bytearray(trailer + length + block)
            base = _address_of(sealed)
        data_at = base + trailer
        try:  # from here on, an interrupt finds the plaintext copy to wipe
            if fresh is None:
                sealed[trailer : trailer + length] = source
                spare = None
            else:
                spare = bytearray(block) if block else None  # as in encrypt
            del source
            padding_at = data_at + length if spare is None else _address_of(spare)
            desc = self._desc or self._descriptor()
            fields = (trailer, _TOKEN, base, length, _DATA, data_at, block, _PADDING, padding_at)
            t_len, t_at, d_len, d_at, p_len, p_at = self._call_bare(
                self._lib.EncryptMessage_bare, _ENCRYPT, fqop, desc.pointer, 0,
                desc.fills[3], fields, desc.places_of[3], desc.memory,
            )  # fmt: skip
        except BaseException:
            ctypes.memset(data_at, 0, length)  # still the plaintext
            raise
        in_place = t_len == trailer and t_at == base and d_len == length and d_at == data_at
        if in_place and type(sealed) is bytes and not p_len:
            return sealed  # sealed where it is
        if in_place and type(sealed) is bytearray and (not p_len or p_at == data_at + length):
            with memoryview(sealed) as view:
                message = bytes(view[: trailer + length + p_len])
        else:
            message = _copy_out(t_at, t_len) + _copy_out(d_at, d_len) + _copy_out(p_at, p_len)
        ctypes.memset(data_at, 0, length)  # plaintext, if the provider wrote elsewhere
        return message

    def unwrap(self, message: Blob, *, allow_unencrypted: bool = False) -> bytes:
        """Open a ``wrap`` message (``token || data || padding``); return the data.

        Opens what sspilib's and pyspnego's ``wrap`` and GSS-API's ``gss_wrap`` produce:
        the whole message goes to ``DecryptMessage`` as one ``SECBUFFER_STREAM`` with
        an empty ``SECBUFFER_DATA``, and the provider splits token from data itself, so
        any package and any token size works. ``message`` is never changed: SSPI works
        on a private copy, wiped afterwards.

        A message that was signed but not encrypted (the provider reports
        ``SECQOP_WRAP_NO_ENCRYPT`` in ``DecryptMessage``'s QOP) on a context that
        negotiated confidentiality is refused with ``UnencryptedMessageError``, its
        plaintext withheld, unless ``allow_unencrypted=True``: a peer must not be able
        to drop encryption silently. On a context without confidentiality such messages
        open as usual. What counts is what the provider reports, not what the sender
        asked for: a provider that seals a sign-only request anyway (Windows NTLM with
        confidentiality negotiated, sspi-rs) reports an encrypted message.
        Raises ``ValueError`` for an empty message, and the provider's error
        (``MessageAlteredError`` on tampering) when SSPI rejects it.
        """
        allow = boolean(allow_unencrypted, "allow_unencrypted")
        source, length = copyable(message, "message")
        self._refuse_closed()
        work = bytearray(source)
        del source
        base = _address_of(work)
        desc = self._desc or self._descriptor()
        try:
            opened = self._call_bare(
                self._lib.DecryptMessage_bare, _DECRYPT, desc.pointer, 0, desc.ulong,
                desc.fills[2], (length, _STREAM, base, 0, _DATA, 0), desc.read_out[2],
                desc.memory,
            )  # fmt: skip
            qop = opened[6]
            if qop & _NO_ENCRYPT:
                self._refuse_unencrypted(qop, allow)
            d_len, d_at = _data_place(opened)
            if not d_len:
                return b""
            if base <= d_at and d_at + d_len <= base + length:
                offset = d_at - base
                return bytes(memoryview(work)[offset : offset + d_len])
            return ctypes.string_at(d_at, d_len)  # the provider's own memory
        finally:
            ctypes.memset(base, 0, length)  # decrypted in place: plaintext

    # The caller's buffers: wrap_iov / unwrap_iov --------------------------------------

    def wrap_iov(
        self,
        buffers: Iterable[IovBuffer],
        *,
        encrypt: bool = True,
        qop: int = 0,
        seq_no: int = 0,
    ) -> IovResult:
        """``EncryptMessage`` over the caller's own list of buffers.

        For protocols that keep token and data apart (DCE/RPC, SMB, WinRM): for
        example ``[IovBuffer(BufferType.READONLY_WITH_CHECKSUM, pdu_header),
        IovBuffer(BufferType.DATA, bytearray(body)), IovBuffer(BufferType.TOKEN)]``.
        A writable ``data`` (``bytearray``, writable ``memoryview``) is encrypted in
        place, with no copy; ``bytes`` are copied first (see ``IovBuffer``). Returns
        the buffers as the provider left them (the token's real length) and the QOP.

        ``encrypt=False`` asks for sign-only protection (``SECQOP_WRAP_NO_ENCRYPT``);
        ``seq_no`` is ``MessageSeqNo``, which datagram contexts (``DATAGRAM``) number
        messages by and connection contexts ignore (leave it 0). If SSPI fails,
        private copies are wiped; the caller's own writable buffers may be partly
        encrypted.
        """
        fqop = _wrap_qop(encrypt, qop)
        sequence = ulong(seq_no, "seq_no")
        return self._iov(_ENCRYPT, buffers, fqop, sequence, allow_unencrypted=True)

    def unwrap_iov(
        self,
        buffers: Iterable[IovBuffer],
        *,
        seq_no: int = 0,
        allow_unencrypted: bool = False,
    ) -> IovResult:
        """``DecryptMessage`` over the caller's own list of buffers.

        ``[IovBuffer(BufferType.STREAM, message), IovBuffer(BufferType.DATA)]`` opens
        a ``wrap`` message (what ``unwrap`` does); ``[IovBuffer(BufferType.TOKEN,
        token), IovBuffer(BufferType.DATA, bytearray(ciphertext))]`` opens token and
        data kept apart, the ciphertext decrypted in place (zero-copy) and returned as
        a ``memoryview`` of it. Returns the buffers as the provider left them and the
        QOP it reported; ``IovResult.encrypted`` tells whether the message was
        encrypted. As with ``unwrap``, a sign-only message on a context that negotiated
        confidentiality raises ``UnencryptedMessageError`` (private copies wiped)
        unless ``allow_unencrypted=True``. ``seq_no``: see ``wrap_iov``.
        """
        sequence = ulong(seq_no, "seq_no")
        allow = boolean(allow_unencrypted, "allow_unencrypted")
        return self._iov(_DECRYPT, buffers, 0, sequence, allow_unencrypted=allow)

    def _iov(
        self,
        function: str,
        buffers: Iterable[IovBuffer],
        qop: int,
        seq_no: int,
        *,
        allow_unencrypted: bool,
    ) -> IovResult:
        items = list(buffers)
        if not items:
            raise ValueError("give at least one IovBuffer")
        if len(items) > MAX_BUFFERS:
            raise ValueError(f"at most {MAX_BUFFERS} buffers, not {len(items)}")
        for item in items:
            if not isinstance(item, IovBuffer):
                raise TypeError(f"buffers must be IovBuffer, not {type(item).__name__}")
            if isinstance(item.data, bytes | bytearray | memoryview):
                size(memoryview(item.data).nbytes, "an IovBuffer's data", MAX_BUFFER)
        sizes = self._cached_sizes()
        self._refuse_closed()  # before anything is copied
        # (start, length, the caller's view or None for a private copy) per region
        regions: list[tuple[int, int, memoryview | None]] = []
        private: list[tuple[int, int]] = []
        keep: list[Any] = []
        fields: list[int] = []
        try:
            for item in items:
                data = item.data
                if data is None:
                    data = _AUTO_SIZE[item.type](sizes) if item.type in _AUTO_SIZE else 0
                view: memoryview | None = None
                if isinstance(data, int):
                    room: Any = bytearray(data)
                elif isinstance(data, bytearray | memoryview) and not memoryview(data).readonly:
                    if memoryview(data).nbytes:  # in place; ValueError if not contiguous
                        view = writable(data, "IovBuffer data")[0]
                    room = view
                else:
                    room = bytearray(data)
                if room is None or not len(room):
                    fields += (0, item.type, 0)  # an output the provider points
                    continue
                start = _address_of(room)
                keep.append(room)
                fields += (len(room), item.type, start)
                regions.append((start, len(room), view))
                if view is None:
                    private.append((start, len(room)))
            desc = Descriptor(len(items), bare=True)
            counted = (len(items), *fields)  # fill's arguments: the count, then the fields
            if function == _ENCRYPT:
                self._call_bare(
                    self._lib.EncryptMessage_bare, _ENCRYPT, qop, desc.pointer, seq_no,
                    desc.fill, counted, desc.out, desc.memory,
                )  # fmt: skip
            else:
                qop = self._call_bare(
                    self._lib.DecryptMessage_bare, _DECRYPT, desc.pointer, seq_no, desc.ulong,
                    desc.fill, counted, desc.out, desc.memory,
                )  # fmt: skip
                if qop & _NO_ENCRYPT:
                    self._refuse_unencrypted(qop, allow_unencrypted)
            left = desc.read(len(items))
            out = tuple(
                IovOutput(
                    _known_type(left[3 * i + 1], item.type),
                    _result(left[3 * i], left[3 * i + 2], regions, function),
                )
                for i, item in enumerate(items)
            )
        finally:
            for start, length in private:
                ctypes.memset(start, 0, length)  # may hold plaintext
        return IovResult(out, qop)


def _address_of(buffer: Any) -> int:
    """The address of a writable buffer's first byte (the buffer stays exported)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))


_AUTO_SIZE: dict[BufferType, Callable[[ContextSizes], int]] = {
    BufferType.TOKEN: lambda sizes: sizes.security_trailer,
    BufferType.PADDING: lambda sizes: sizes.block_size,
}


def _known_type(value: int, given: BufferType) -> BufferType:
    """The type the provider left in a buffer; the one given if it is not a known one."""
    try:
        return BufferType(value)
    except ValueError:
        return given


def _result(
    length: int, at: int, regions: list[tuple[int, int, memoryview | None]], function: str
) -> bytes | memoryview:
    """What the provider left in one buffer: a view of the caller's buffer, or a copy."""
    if not length:
        return b""
    if not at:
        raise InternalError(SEC_E_INTERNAL_ERROR, function, "a buffer came back without memory")
    for start, room, view in regions:
        if view is not None and start <= at and at + length <= start + room:
            return view[at - start : at - start + length]
    return ctypes.string_at(at, length)
