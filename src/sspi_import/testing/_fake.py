"""``FakeSspi``: a simulated SSPI provider behind the real ctypes ABI.

Every function is a ctypes callback built from ``PROTOTYPES[name].functype``, so the
library calls it exactly as it calls ``secur32.dll``: same argument types, same
``SECURITY_STATUS`` results, same ownership rules (SSPI-allocated buffers come back
through ``FreeContextBuffer``, tokens through ``CloseHandle``). The state lives in
Python objects keyed by handle value; one ``RLock`` serializes the calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from ctypes import POINTER, c_void_p
from typing import Any, NamedTuple

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw import loader
from .._raw.functions import PROTOTYPES
from .._raw.status_codes import STATUS_CODES
from .._raw.structs import (
    SEC_WINNT_AUTH_IDENTITY_W,
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
    SecPkgInfoW,
)
from ..errors import status_info
from . import _wire
from ._wire import WireError

__all__ = ["FakeSspi", "Misuse", "Outstanding"]

_STATUS = {symbol: value for symbol, value, _, _ in STATUS_CODES}


def _s(symbol: str) -> int:
    value = _STATUS[symbol]
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


SEC_E_OK = 0
SEC_I_CONTINUE_NEEDED = _s("SEC_I_CONTINUE_NEEDED")
SEC_I_COMPLETE_NEEDED = _s("SEC_I_COMPLETE_NEEDED")
SEC_E_INVALID_HANDLE = _s("SEC_E_INVALID_HANDLE")
SEC_E_INVALID_TOKEN = _s("SEC_E_INVALID_TOKEN")
SEC_E_INVALID_PARAMETER = _s("SEC_E_INVALID_PARAMETER")
SEC_E_INTERNAL_ERROR = _s("SEC_E_INTERNAL_ERROR")
SEC_E_SECPKG_NOT_FOUND = _s("SEC_E_SECPKG_NOT_FOUND")
SEC_E_NO_CREDENTIALS = _s("SEC_E_NO_CREDENTIALS")
SEC_E_UNKNOWN_CREDENTIALS = _s("SEC_E_UNKNOWN_CREDENTIALS")
SEC_E_LOGON_DENIED = _s("SEC_E_LOGON_DENIED")
SEC_E_TARGET_UNKNOWN = _s("SEC_E_TARGET_UNKNOWN")
SEC_E_BUFFER_TOO_SMALL = _s("SEC_E_BUFFER_TOO_SMALL")
SEC_E_MESSAGE_ALTERED = _s("SEC_E_MESSAGE_ALTERED")
SEC_E_OUT_OF_SEQUENCE = _s("SEC_E_OUT_OF_SEQUENCE")
SEC_E_CONTEXT_EXPIRED = _s("SEC_E_CONTEXT_EXPIRED")
SEC_E_UNSUPPORTED_FUNCTION = _s("SEC_E_UNSUPPORTED_FUNCTION")
SEC_E_QOP_NOT_SUPPORTED = _s("SEC_E_QOP_NOT_SUPPORTED")
SEC_E_NO_IMPERSONATION = _s("SEC_E_NO_IMPERSONATION")
SEC_E_CANNOT_PACK = _s("SEC_E_CANNOT_PACK")
SEC_E_INCOMPLETE_MESSAGE = _s("SEC_E_INCOMPLETE_MESSAGE")

# sspi.h request/return flags the fake grants (ISC_REQ_* and ASC_REQ_* share most bits).
_DELEGATE, _MUTUAL, _REPLAY, _SEQUENCE, _CONFIDENTIALITY = 0x1, 0x2, 0x4, 0x8, 0x10
_ALLOCATE_MEMORY, _CONNECTION = 0x100, 0x800
_ISC_INTEGRITY, _ASC_INTEGRITY = 0x10000, 0x20000
_COMMON = _DELEGATE | _MUTUAL | _REPLAY | _SEQUENCE | _CONFIDENTIALITY | _CONNECTION
_ISC_SUPPORTED = _COMMON | _ISC_INTEGRITY
_ASC_SUPPORTED = _COMMON | _ASC_INTEGRITY
_SECBUFFER_ATTRMASK = 0xF0000000
_SECPKG_NEGOTIATION_COMPLETE, _SECPKG_NEGOTIATION_IN_PROGRESS = 0, 2
_DUPLICATE_CLOSE_SOURCE = 0x1

_CTX_TAG = 0x5EC7F4CE
_CRED_TAG = 0x5EC2F4CE
_POINTER_MASK = (1 << (ctypes.sizeof(c_void_p) * 8)) - 1
_PSEUDO_PROCESS = _POINTER_MASK  # GetCurrentProcess() is (HANDLE)-1
_LOCAL_TOKEN_BASE = 0x0000_1000
_PROCESS_HANDLE_BASE = 0x2000_0000
_FOREIGN_TOKEN_BASE = 0x4000_0000  # tokens another process's fake duplicated into us
_NEVER = 0x7FFF_FFFF_FFFF_FFFF
_EPOCH_TICKS = 116_444_736_000_000_000  # 1601 to 1970 in 100 ns ticks

# Kernel32 functions return BOOL or HANDLE: a failure is 0, not a status.
_SYMBOLS = tuple(name for name, proto in PROTOTYPES.items() if name == proto.symbol)
_KERNEL32 = frozenset(name for name in _SYMBOLS if PROTOTYPES[name].kernel32)

_PACKAGE_INFO: dict[str, tuple[int, int, int, str]] = {
    # name: (fCapabilities, wRPCID, cbMaxToken, Comment), as Windows reports them
    "NTLM": (0x00082B37, 10, 2888, "NTLM Security Package"),
    "Kerberos": (0x000F3BBF, 16, 48256, "Microsoft Kerberos V1.0"),
    "Negotiate": (0x00083BB3, 9, 48256, "Microsoft Package Negotiator"),
}


def _filetime(seconds: float) -> int:
    return int(seconds * 10_000_000) + _EPOCH_TICKS


class Misuse(NamedTuple):
    """One call the real DLL would also have refused with ``SEC_E_INVALID_HANDLE``."""

    function: str
    """The function called, e.g. ``"FreeContextBuffer"``."""
    kind: str
    """What was wrong: ``"double free"``, ``"double delete"``, ``"unknown handle"``..."""
    value: int
    """The pointer or handle value (``dwLower`` for SSPI handles)."""


@dataclasses.dataclass(frozen=True)
class Outstanding:
    """What a ``FakeSspi`` has handed out and not had back: counts, and a line each."""

    contexts: int = 0
    """Security contexts not deleted (``DeleteSecurityContext``)."""
    credentials: int = 0
    """Credential handles not freed (``FreeCredentialsHandle``)."""
    buffers: int = 0
    """SSPI-allocated buffers not freed (``FreeContextBuffer``)."""
    tokens: int = 0
    """Token handles not closed (``CloseHandle``)."""
    process_handles: int = 0
    """``OpenProcess`` handles not closed (``CloseHandle``)."""
    impersonations: int = 0
    """``ImpersonateSecurityContext`` calls not reverted (``RevertSecurityContext``)."""
    details: tuple[str, ...] = ()
    """One description per outstanding item."""

    def __bool__(self) -> bool:
        return any(
            (
                self.contexts,
                self.credentials,
                self.buffers,
                self.tokens,
                self.process_handles,
                self.impersonations,
            )
        )


@dataclasses.dataclass
class _Cred:
    package: str
    user: str | None
    password: str
    use: int


@dataclasses.dataclass
class _Ctx:
    role: str  # "initiator" or "acceptor"
    package: str  # as acquired/imported: may be "Negotiate"
    mech: str  # the package doing the work
    user: str
    password: str
    flags: int
    start: int
    expiry: int
    stage: int = 0  # 1: first leg done; 2: complete
    client_nonce: bytes = b""
    server_nonce: bytes = b""
    session_key: bytes = b""
    send_seq: int = 0
    recv_seq: int = 0
    has_token: bool = False
    target: str | None = None

    @property
    def complete(self) -> bool:
        return self.stage == 2

    def key(self, purpose: bytes, sender: str) -> bytes:
        return _wire.derive(self.session_key, purpose, sender.encode())

    @property
    def peer(self) -> str:
        return "acceptor" if self.role == "initiator" else "initiator"

    def describe(self) -> str:
        state = "complete" if self.complete else "handshake in progress"
        return f"{self.role} {self.package} context of {self.user!r} ({state})"

    def state(self, reset: bool) -> dict[str, Any]:
        return {
            "role": self.role,
            "package": self.package,
            "mech": self.mech,
            "user": self.user,
            "flags": self.flags,
            "start": self.start,
            "expiry": self.expiry,
            "session_key": self.session_key.hex(),
            "send_seq": 0 if reset else self.send_seq,
            "recv_seq": 0 if reset else self.recv_seq,
            "has_token": self.has_token,
            "target": self.target,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Ctx:
        ctx = cls(
            role=state["role"],
            package=state["package"],
            mech=state["mech"],
            user=state["user"],
            password="",
            flags=int(state["flags"]),
            start=int(state["start"]),
            expiry=int(state["expiry"]),
            stage=2,
            session_key=bytes.fromhex(state["session_key"]),
            send_seq=int(state["send_seq"]),
            recv_seq=int(state["recv_seq"]),
            has_token=bool(state["has_token"]),
            target=state["target"],
        )
        if ctx.role not in ("initiator", "acceptor") or len(ctx.session_key) != 32:
            raise WireError("garbled packed context")
        if not all(isinstance(v, str) for v in (ctx.package, ctx.mech, ctx.user)):
            raise WireError("garbled packed context")
        return ctx


class _FaultError(Exception):
    """Raised inside an implementation to return ``status`` from the callback."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _read_wstr(address: int | None, what: str = "string") -> str | None:
    """A NUL-terminated UTF-16 string at ``address`` (``None`` for NULL)."""
    if not address:
        return None
    units: list[int] = []
    while len(units) < 32767:
        unit = ctypes.c_uint16.from_address(address + 2 * len(units)).value
        if unit == 0:
            break
        units.append(unit)
    raw = struct.pack(f"<{len(units)}H", *units)
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        raise _FaultError(SEC_E_INVALID_PARAMETER) from None


def _read_counted(address: int | None, length: int) -> str:
    if not address or not length:
        return ""
    try:
        return ctypes.string_at(address, 2 * length).decode("utf-16-le")
    except UnicodeDecodeError:
        raise _FaultError(SEC_E_UNKNOWN_CREDENTIALS) from None


def _buffers(desc: Any) -> list[SecBuffer]:
    """The ``SecBuffer`` views of a ``PSecBufferDesc`` (empty for NULL)."""
    if not desc:
        return []
    d: SecBufferDesc = desc.contents
    if d.ulVersion != C.SECBUFFER_VERSION or d.cBuffers > 64:
        raise _FaultError(SEC_E_INVALID_PARAMETER)
    if d.cBuffers and not d.pBuffers:
        raise _FaultError(SEC_E_INVALID_PARAMETER)
    return [d.pBuffers[i] for i in range(d.cBuffers)]


def _of_type(buffers: Iterable[SecBuffer], kind: int) -> list[SecBuffer]:
    return [b for b in buffers if b.BufferType & ~_SECBUFFER_ATTRMASK == kind]


def _read(buffer: SecBuffer) -> bytes:
    if not buffer.cbBuffer:
        return b""
    if not buffer.pvBuffer:
        raise _FaultError(SEC_E_INVALID_PARAMETER)
    return ctypes.string_at(buffer.pvBuffer, buffer.cbBuffer)


class FakeSspi:
    r"""A simulated SSPI library: real ABI, real keyed crypto, leak and misuse tracking.

    ::

        with FakeSspi(user="EXAMPLE\\alice") as fake:   # installed as the library
            ...                                           # any sspi_import code
            fake.assert_no_leaks()

    ``user`` is who ``AcquireCredentialsHandleW`` with no auth data logs on as
    (``None``: there are no default credentials, ``SEC_E_NO_CREDENTIALS``).
    ``password``, when set, is the only password an acceptor accepts
    (``SEC_E_LOGON_DENIED`` otherwise); ``None`` accepts any. ``packages`` are the
    packages offered; Negotiate negotiates NTLM (or Kerberos when there is no NTLM).
    ``machine`` names the simulated computer: packed contexts are authenticated with a
    key derived from it, so another process with the same name can import them and one
    with another name refuses them (``SEC_E_INVALID_TOKEN``). ``lifetime`` (seconds) is
    how long a context lives. ``complete_needed`` makes the acceptor's last leg return
    ``SEC_I_COMPLETE_NEEDED`` (as sspi-rs NTLM does), to exercise ``CompleteAuthToken``.

    The handshake is three tokens: initiator (``SEC_I_CONTINUE_NEEDED``), acceptor
    (``SEC_I_CONTINUE_NEEDED``), initiator (``SEC_E_OK``), then the acceptor takes the
    last token (``SEC_E_OK``, no output). Acceptor contexts carry a logon token, so
    ``ExportSecurityContext`` hands one out for them (``None`` for initiators) and
    ``ImpersonateSecurityContext`` works on them, including on an imported acceptor
    context when the token was passed to ``ImportSecurityContextW``.
    """

    def __init__(
        self,
        user: str | None = "EXAMPLE\\alice",
        packages: Iterable[str] = ("NTLM", "Kerberos", "Negotiate"),
        machine: str = "FAKEHOST",
        *,
        password: str | None = None,
        lifetime: float = 10 * 3600.0,
        complete_needed: bool = False,
    ) -> None:
        self.user = user
        self.packages: tuple[str, ...] = tuple(packages)
        if not self.packages or not all(isinstance(p, str) and p for p in self.packages):
            raise ValueError("packages must be a non-empty sequence of package names")
        self.machine = machine
        self.password = password
        self.lifetime = lifetime
        self.complete_needed = complete_needed
        self.internal_errors: list[str] = []
        """Exceptions caught inside callbacks (each returned ``SEC_E_INTERNAL_ERROR``)."""
        self.misuses: list[Misuse] = []
        """Calls refused as the real DLL would (double free, double delete, ...)."""
        self._machine_key = _wire.machine_key(machine)
        self._lock = threading.RLock()
        self._next_id = 1
        self._contexts: dict[int, _Ctx] = {}
        self._credentials: dict[int, _Cred] = {}
        self._buffers: dict[int, Any] = {}
        self._tokens: dict[int, str] = {}
        self._processes: dict[int, int] = {}
        self._impersonating: dict[int, str] = {}
        self._gone: set[tuple[str, int]] = set()  # deleted/freed/closed values
        self._sent_tokens: dict[int, int] = {}
        self._calls: dict[str, int] = dict.fromkeys(_SYMBOLS, 0)
        self._failures: dict[str, list[int]] = {}
        self._previous: list[loader.Api | None] = []
        self._callbacks: dict[str, Any] = {}
        self._addresses: dict[str, int] = {}
        for name in _SYMBOLS:
            proto = PROTOTYPES[name]  # the declared one: bare bindings share its symbol
            impl = getattr(self, f"_{name}")
            callback = proto.functype(self._guard(name, impl))
            self._callbacks[name] = callback
            self._addresses[name] = ctypes.cast(callback, c_void_p).value or 0

    # The SspiLibrary protocol and installation ------------------------------------

    def sspi_function_address(self, name: str) -> int | None:
        """The address of the callback implementing ``name`` (``None`` if not simulated)."""
        return self._addresses.get(name)

    def __repr__(self) -> str:
        return f"FakeSspi(user={self.user!r}, packages={self.packages!r}, machine={self.machine!r})"

    def __enter__(self) -> FakeSspi:
        """Install this fake as the library; the previous one comes back on exit."""
        self._previous.append(loader.swap(loader.load(self, repr(self))))
        return self

    def __exit__(self, *exc_info: object) -> None:
        loader.swap(self._previous.pop())

    # Inspection and control -----------------------------------------------------

    def _check_name(self, function: str) -> None:
        if function not in _SYMBOLS:
            raise ValueError(
                f"{function!r} is not an SSPI function FakeSspi simulates; "
                f"known: {', '.join(sorted(_SYMBOLS))}"
            )

    def calls(self, function: str) -> int:
        """How many times ``function`` was called (injected failures included)."""
        self._check_name(function)
        return self._calls[function]

    def fail(self, function: str, status: int | str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``function`` return ``status`` and do nothing.

        ``status`` is a code (signed or unsigned) or a ``SEC_E_*`` name. Kernel32
        functions (``CloseHandle``, ``DuplicateHandle``, ``OpenProcess``) return
        ``FALSE``/``NULL`` instead, whatever the status. Unknown names: ``ValueError``.
        """
        self._check_name(function)
        if function == "GetCurrentProcess":
            raise ValueError("GetCurrentProcess cannot fail")
        info = status_info(status)
        if info is None:
            if isinstance(status, str):
                raise ValueError(f"unknown status {status!r}")
            value = status & 0xFFFF_FFFF
        else:
            value = info.status
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive int")
        signed = value - 0x1_0000_0000 if value & 0x8000_0000 else value
        with self._lock:
            self._failures.setdefault(function, []).extend([signed] * times)

    def outstanding(self) -> Outstanding:
        """What has been handed out and not released yet."""
        with self._lock:
            details = [
                *(f"context {i:#x}: {c.describe()}" for i, c in self._contexts.items()),
                *(
                    f"credentials {i:#x}: {c.package} for {c.user!r}"
                    for i, c in self._credentials.items()
                ),
                *(f"buffer {a:#x} ({ctypes.sizeof(b)} bytes)" for a, b in self._buffers.items()),
                *(f"token {h:#x} of {u!r}" for h, u in self._tokens.items()),
                *(f"process handle {h:#x} (pid {p})" for h, p in self._processes.items()),
                *(f"impersonation of {u!r}" for u in self._impersonating.values()),
            ]
            return Outstanding(
                contexts=len(self._contexts),
                credentials=len(self._credentials),
                buffers=len(self._buffers),
                tokens=len(self._tokens),
                process_handles=len(self._processes),
                impersonations=len(self._impersonating),
                details=tuple(details),
            )

    def assert_no_leaks(self) -> None:
        """Raise ``AssertionError`` naming every leaked item and every internal error."""
        out = self.outstanding()
        problems = list(out.details)
        problems += [f"internal error: {e}" for e in self.internal_errors]
        if problems:
            raise AssertionError("FakeSspi: " + "; ".join(problems))

    @property
    def impersonating(self) -> str | None:
        """The user being impersonated now (the latest impersonation), or ``None``."""
        with self._lock:
            users = list(self._impersonating.values())
        return users[-1] if users else None

    @property
    def sent_tokens(self) -> dict[int, int]:
        """Tokens duplicated into other processes: handle value there -> target pid."""
        with self._lock:
            return dict(self._sent_tokens)

    # The callback guard ---------------------------------------------------------

    def _guard(self, name: str, impl: Callable[..., int]) -> Callable[..., int]:
        kernel = name in _KERNEL32

        def callback(*args: Any) -> int:
            try:
                with self._lock:
                    self._calls[name] += 1
                    pending = self._failures.get(name)
                    if pending:
                        status = pending.pop(0)
                        return 0 if kernel else status
                    try:
                        return int(impl(*args))
                    except _FaultError as fault:
                        return 0 if kernel else fault.status
            except BaseException:  # nothing may escape into ctypes
                with contextlib.suppress(BaseException):  # out of memory: nothing to do
                    self.internal_errors.append(f"{name}: {traceback.format_exc()}")
                return 0 if kernel else SEC_E_INTERNAL_ERROR

        callback.__name__ = f"fake_{name}"
        return callback

    # Bookkeeping ----------------------------------------------------------------

    def _new_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def _misuse(self, function: str, kind: str, value: int) -> _FaultError:
        self.misuses.append(Misuse(function, kind, value))
        return _FaultError(SEC_E_INVALID_HANDLE)

    def _lookup(self, ph: Any, tag: int, table: dict[int, Any], function: str) -> Any:
        if not ph:
            raise self._misuse(function, "NULL handle", 0)
        handle: SecHandle = ph.contents
        key = int(handle.dwLower)
        found = table.get(key) if handle.dwUpper == tag else None
        if found is None:
            kind = "credentials" if tag == _CRED_TAG else "context"
            gone = (kind, key) in self._gone and handle.dwUpper == tag
            raise self._misuse(function, f"{'deleted' if gone else 'unknown'} {kind}", key)
        return found

    def _ctx(self, ph: Any, function: str) -> _Ctx:
        ctx: _Ctx = self._lookup(ph, _CTX_TAG, self._contexts, function)
        return ctx

    def _ready(self, ph: Any, function: str) -> _Ctx:
        ctx = self._ctx(ph, function)
        if not ctx.complete:
            raise _FaultError(SEC_E_INVALID_HANDLE)
        if _filetime(time.time()) >= ctx.expiry:
            raise _FaultError(SEC_E_CONTEXT_EXPIRED)
        return ctx

    def _put_handle(self, ph: Any, key: int, tag: int) -> None:
        if not ph:
            raise _FaultError(SEC_E_INVALID_PARAMETER)
        ph.contents.dwLower = key
        ph.contents.dwUpper = tag

    def _add_context(self, ctx: _Ctx, ph: Any) -> int:
        key = self._new_id()
        self._put_handle(ph, key, _CTX_TAG)
        self._contexts[key] = ctx
        return key

    def _remove_context(self, key: int) -> None:
        del self._contexts[key]
        self._impersonating.pop(key, None)
        self._gone.add(("context", key))

    def _alloc(self, data: bytes) -> int:
        buffer = ctypes.create_string_buffer(data, max(len(data), 1))
        address = ctypes.addressof(buffer)
        self._buffers[address] = buffer
        self._gone.discard(("buffer", address))
        return address

    def _alloc_infos(self, names: list[str]) -> int:
        """One block: an array of ``SecPkgInfoW``, then the strings it points to."""
        size = ctypes.sizeof(SecPkgInfoW)
        strings = [(n.encode("utf-16-le") + b"\0\0", self._info(n)) for n in names]
        total = size * len(names) + sum(len(s) + len(i[3]) * 2 + 2 for s, i in strings)
        address = self._alloc(bytes(total))
        text = address + size * len(names)
        for index, (encoded, (caps, rpcid, max_token, comment)) in enumerate(strings):
            info = SecPkgInfoW.from_address(address + index * size)
            info.fCapabilities, info.wVersion, info.wRPCID = caps, 1, rpcid
            info.cbMaxToken = max_token
            ctypes.memmove(text, encoded, len(encoded))
            info.Name = text
            text += len(encoded)
            comment_bytes = comment.encode("utf-16-le") + b"\0\0"
            ctypes.memmove(text, comment_bytes, len(comment_bytes))
            info.Comment = text
            text += len(comment_bytes)
        return address

    @staticmethod
    def _info(package: str) -> tuple[int, int, int, str]:
        return _PACKAGE_INFO.get(package, (0x00000003, 0xFFFF, 12000, f"{package} (simulated)"))

    def _negotiated(self) -> str:
        for candidate in ("NTLM", "Kerberos"):
            if candidate in self.packages:
                return candidate
        return next(p for p in self.packages if p != "Negotiate")

    def _new_token(self, user: str) -> int:
        value = _LOCAL_TOKEN_BASE + 4 * self._new_id()
        self._tokens[value] = user
        return value

    def _live_token(self, value: int, function: str) -> int:
        if value in self._tokens:
            return value
        if value in self._sent_tokens:
            raise self._misuse(function, "handle of another process", value)
        if value >= _FOREIGN_TOKEN_BASE and ("token", value) not in self._gone:
            self._tokens[value] = "a token duplicated from another process"
            return value
        gone = ("token", value) in self._gone
        raise self._misuse(function, "closed handle" if gone else "unknown handle", value)

    def _put_token(self, output: Any, data: bytes, allocate: bool) -> None:
        tokens = _of_type(_buffers(output), C.SECBUFFER_TOKEN)
        if not tokens:
            if data:
                raise _FaultError(SEC_E_INVALID_TOKEN)
            return
        buffer = tokens[0]
        if allocate:
            buffer.pvBuffer = self._alloc(data) if data else None
        elif data:
            if not buffer.pvBuffer or buffer.cbBuffer < len(data):
                raise _FaultError(SEC_E_BUFFER_TOO_SMALL)
            ctypes.memmove(buffer.pvBuffer, data, len(data))
        buffer.cbBuffer = len(data)

    @staticmethod
    def _input_token(desc: Any) -> bytes:
        buffers = _buffers(desc)
        tokens = _of_type(buffers, C.SECBUFFER_TOKEN)
        if not tokens or not tokens[0].cbBuffer:
            raise _FaultError(SEC_E_INVALID_TOKEN)
        data = _read(tokens[0])
        # As real packages do: part of a token is SEC_E_INCOMPLETE_MESSAGE (nothing
        # consumed), bytes after a whole token go back in an EMPTY buffer as EXTRA.
        used = _wire.token_extent(data)
        if used is None:
            raise _FaultError(SEC_E_INCOMPLETE_MESSAGE)
        if used < len(data):
            empty = _of_type(buffers, C.SECBUFFER_EMPTY)
            if empty:
                empty[0].BufferType = C.SECBUFFER_EXTRA
                empty[0].cbBuffer = len(data) - used
            data = data[:used]
        return data

    @staticmethod
    def _put_ulong(pointer: Any, value: int) -> None:
        if pointer:
            pointer[0] = value

    def _session_key(self, ctx: _Ctx) -> bytes:
        nonces = (ctx.client_nonce, ctx.server_nonce)
        names = (ctx.user.encode(), ctx.mech.encode())
        return _wire.derive(self._machine_key, b"session", *nonces, *names)

    @staticmethod
    def _proof(password: str, ctx: _Ctx) -> str:
        key = _wire.derive(password.encode(), b"password")
        return _wire.mac(key, ctx.client_nonce, ctx.server_nonce, ctx.user.encode()).hex()

    # Credentials ----------------------------------------------------------------

    def _AcquireCredentialsHandleW(  # noqa: N802 - C name
        self,
        principal: int | None,
        package_ptr: int | None,
        use: int,
        logon_id: int | None,
        auth_data: int | None,
        get_key: int | None,
        get_key_arg: int | None,
        ph_credential: Any,
        pts_expiry: Any,
    ) -> int:
        package = _read_wstr(package_ptr)
        if package is None or package not in self.packages:
            return SEC_E_SECPKG_NOT_FOUND
        if use not in (C.SECPKG_CRED_INBOUND, C.SECPKG_CRED_OUTBOUND, C.SECPKG_CRED_BOTH):
            return SEC_E_INVALID_PARAMETER
        user, password = self.user, self.password or ""
        if auth_data:
            identity = SEC_WINNT_AUTH_IDENTITY_W.from_address(auth_data)
            if identity.Flags != C.SEC_WINNT_AUTH_IDENTITY_UNICODE:
                return SEC_E_UNKNOWN_CREDENTIALS
            name = _read_counted(identity.User, identity.UserLength)
            domain = _read_counted(identity.Domain, identity.DomainLength)
            password = _read_counted(identity.Password, identity.PasswordLength)
            if name:
                user = f"{domain}\\{name}" if domain else name
        if user is None and use & C.SECPKG_CRED_OUTBOUND:
            return SEC_E_NO_CREDENTIALS
        key = self._new_id()
        self._put_handle(ph_credential, key, _CRED_TAG)
        self._credentials[key] = _Cred(package, user, password, use)
        self._put_ulong(pts_expiry, _NEVER)
        return SEC_E_OK

    def _FreeCredentialsHandle(self, ph: Any) -> int:  # noqa: N802 - C name
        self._lookup(ph, _CRED_TAG, self._credentials, "FreeCredentialsHandle")
        key = int(ph.contents.dwLower)
        del self._credentials[key]
        self._gone.add(("credentials", key))
        return SEC_E_OK

    # The handshake --------------------------------------------------------------

    def _InitializeSecurityContextW(  # noqa: N802 - C name
        self,
        ph_credential: Any,
        ph_context: Any,
        target_ptr: int | None,
        req: int,
        reserved1: int,
        data_rep: int,
        p_input: Any,
        reserved2: int,
        ph_new: Any,
        p_output: Any,
        pf_attr: Any,
        pts_expiry: Any,
    ) -> int:
        allocate = bool(req & _ALLOCATE_MEMORY)
        granted = req & _ISC_SUPPORTED
        if not ph_context:
            cred: _Cred = self._lookup(
                ph_credential, _CRED_TAG, self._credentials, "InitializeSecurityContextW"
            )
            if not cred.use & C.SECPKG_CRED_OUTBOUND or cred.user is None:
                return SEC_E_NO_CREDENTIALS
            target = _read_wstr(target_ptr)
            mech = self._negotiated() if cred.package == "Negotiate" else cred.package
            if mech == "Kerberos" and not target:
                return SEC_E_TARGET_UNKNOWN
            now = time.time()
            ctx = _Ctx(
                role="initiator",
                package=cred.package,
                mech=mech,
                user=cred.user,
                password=cred.password,
                flags=granted,
                start=_filetime(now),
                expiry=_filetime(now + self.lifetime),
                stage=1,
                client_nonce=os.urandom(16),
                target=target,
            )
            token = _wire.pack_token(
                1, {"package": cred.package, "mech": mech, "nonce": ctx.client_nonce.hex()}
            )
            self._put_token(p_output, token, allocate)
            self._add_context(ctx, ph_new)
            self._put_ulong(pf_attr, granted | (_ALLOCATE_MEMORY if allocate else 0))
            self._put_ulong(pts_expiry, ctx.expiry)
            return SEC_I_CONTINUE_NEEDED
        ctx = self._ctx(ph_context, "InitializeSecurityContextW")
        if ctx.role != "initiator" or ctx.stage != 1:
            return SEC_E_INVALID_TOKEN
        try:
            fields = _wire.unpack_token(self._input_token(p_input), 2)
            ctx.server_nonce = bytes.fromhex(fields["nonce"])
        except (WireError, KeyError, TypeError, ValueError):
            return SEC_E_INVALID_TOKEN
        token = _wire.pack_token(
            3, {"user": ctx.user, "proof": self._proof(ctx.password, ctx), "flags": ctx.flags}
        )
        self._put_token(p_output, token, allocate)
        ctx.session_key = self._session_key(ctx)
        ctx.stage = 2
        if ph_new:
            ph_new.contents.dwLower = ph_context.contents.dwLower
            ph_new.contents.dwUpper = _CTX_TAG
        self._put_ulong(pf_attr, ctx.flags | (_ALLOCATE_MEMORY if allocate else 0))
        self._put_ulong(pts_expiry, ctx.expiry)
        return SEC_E_OK

    def _AcceptSecurityContext(  # noqa: N802 - C name
        self,
        ph_credential: Any,
        ph_context: Any,
        p_input: Any,
        req: int,
        data_rep: int,
        ph_new: Any,
        p_output: Any,
        pf_attr: Any,
        pts_expiry: Any,
    ) -> int:
        allocate = bool(req & _ALLOCATE_MEMORY)
        granted = req & _ASC_SUPPORTED
        if not ph_context:
            cred: _Cred = self._lookup(
                ph_credential, _CRED_TAG, self._credentials, "AcceptSecurityContext"
            )
            if not cred.use & C.SECPKG_CRED_INBOUND:
                return SEC_E_NO_CREDENTIALS
            try:
                fields = _wire.unpack_token(self._input_token(p_input), 1)
                mech, client_nonce = str(fields["mech"]), bytes.fromhex(fields["nonce"])
            except (WireError, KeyError, TypeError, ValueError):
                return SEC_E_INVALID_TOKEN
            if mech not in self.packages or cred.package not in ("Negotiate", mech):
                return SEC_E_INVALID_TOKEN
            now = time.time()
            ctx = _Ctx(
                role="acceptor",
                package=cred.package,
                mech=mech,
                user="",
                password="",
                flags=granted,
                start=_filetime(now),
                expiry=_filetime(now + self.lifetime),
                stage=1,
                client_nonce=client_nonce,
                server_nonce=os.urandom(16),
            )
            token = _wire.pack_token(2, {"nonce": ctx.server_nonce.hex(), "mech": mech})
            self._put_token(p_output, token, allocate)
            self._add_context(ctx, ph_new)
            self._put_ulong(pf_attr, granted | (_ALLOCATE_MEMORY if allocate else 0))
            self._put_ulong(pts_expiry, ctx.expiry)
            return SEC_I_CONTINUE_NEEDED
        ctx = self._ctx(ph_context, "AcceptSecurityContext")
        if ctx.role != "acceptor" or ctx.stage != 1:
            return SEC_E_INVALID_TOKEN
        try:
            fields = _wire.unpack_token(self._input_token(p_input), 3)
            user, proof = fields["user"], fields["proof"]
        except (WireError, KeyError, TypeError, ValueError):
            return SEC_E_INVALID_TOKEN
        if not isinstance(user, str) or not user or not isinstance(proof, str):
            return SEC_E_INVALID_TOKEN
        ctx.user = user
        if self.password is not None and proof != self._proof(self.password, ctx):
            return SEC_E_LOGON_DENIED
        self._put_token(p_output, b"", allocate)
        ctx.session_key = self._session_key(ctx)
        ctx.stage = 2
        ctx.has_token = True
        if ph_new:
            ph_new.contents.dwLower = ph_context.contents.dwLower
            ph_new.contents.dwUpper = _CTX_TAG
        self._put_ulong(pf_attr, ctx.flags | (_ALLOCATE_MEMORY if allocate else 0))
        self._put_ulong(pts_expiry, ctx.expiry)
        return SEC_I_COMPLETE_NEEDED if self.complete_needed else SEC_E_OK

    def _CompleteAuthToken(self, ph: Any, p_token: Any) -> int:  # noqa: N802 - C name
        self._ctx(ph, "CompleteAuthToken")
        return SEC_E_OK

    # Attributes -----------------------------------------------------------------

    def _QueryContextAttributesW(  # noqa: N802 - C name
        self, ph: Any, attribute: int, p_buffer: int | None
    ) -> int:
        ctx = self._ctx(ph, "QueryContextAttributesW")
        if not p_buffer:
            return SEC_E_INVALID_PARAMETER
        if attribute == C.SECPKG_ATTR_FLAGS:
            SecPkgContext_Flags.from_address(p_buffer).Flags = ctx.flags
            return SEC_E_OK
        if attribute == C.SECPKG_ATTR_PACKAGE_INFO:
            info = SecPkgContext_PackageInfoW.from_address(p_buffer)
            info.PackageInfo = ctypes.cast(self._alloc_infos([ctx.package]), POINTER(SecPkgInfoW))
            return SEC_E_OK
        if attribute == C.SECPKG_ATTR_NEGOTIATION_INFO:
            if ctx.package != "Negotiate":
                return SEC_E_UNSUPPORTED_FUNCTION
            negotiation = SecPkgContext_NegotiationInfoW.from_address(p_buffer)
            negotiation.PackageInfo = ctypes.cast(
                self._alloc_infos([ctx.mech]), POINTER(SecPkgInfoW)
            )
            negotiation.NegotiationState = (
                _SECPKG_NEGOTIATION_COMPLETE if ctx.complete else _SECPKG_NEGOTIATION_IN_PROGRESS
            )
            return SEC_E_OK
        if not ctx.complete:
            return SEC_E_INVALID_HANDLE
        if attribute == C.SECPKG_ATTR_SIZES:
            sizes = SecPkgContext_Sizes.from_address(p_buffer)
            sizes.cbMaxToken = self._info(ctx.mech)[2]
            sizes.cbMaxSignature = _wire.SIGNATURE_SIZE
            sizes.cbBlockSize = 1
            sizes.cbSecurityTrailer = _wire.SIGNATURE_SIZE
        elif attribute == C.SECPKG_ATTR_NAMES:
            names = SecPkgContext_NamesW.from_address(p_buffer)
            names.sUserName = self._alloc(ctx.user.encode("utf-16-le") + b"\0\0")
        elif attribute == C.SECPKG_ATTR_LIFESPAN:
            span = SecPkgContext_Lifespan.from_address(p_buffer)
            span.tsStart, span.tsExpiry = ctx.start, ctx.expiry
        elif attribute == C.SECPKG_ATTR_SESSION_KEY:
            key = SecPkgContext_SessionKey.from_address(p_buffer)
            key.SessionKeyLength = 16
            key.SessionKey = self._alloc(ctx.key(b"exported-session-key", "both")[:16])
        else:
            return SEC_E_UNSUPPORTED_FUNCTION
        return SEC_E_OK

    # Messages -------------------------------------------------------------------

    @staticmethod
    def _trailer(buffers: list[SecBuffer]) -> SecBuffer:
        tokens = _of_type(buffers, C.SECBUFFER_TOKEN)
        if not tokens:
            raise _FaultError(SEC_E_INVALID_TOKEN)
        return tokens[0]

    def _protect(self, ph: Any, qop: int, p_message: Any, function: str, seal: bool) -> int:
        ctx = self._ready(ph, function)
        if qop not in (0, C.SECQOP_WRAP_NO_ENCRYPT) or (not seal and qop):
            return SEC_E_QOP_NOT_SUPPORTED
        encrypt = seal and qop == 0
        buffers = _buffers(p_message)
        trailer = self._trailer(buffers)
        if not trailer.pvBuffer or trailer.cbBuffer < _wire.SIGNATURE_SIZE:
            return SEC_E_BUFFER_TOO_SMALL
        data = _of_type(buffers, C.SECBUFFER_DATA)
        seq = struct.pack("<Q", ctx.send_seq)
        header = struct.pack("<I", (1 if seal else 0) | (2 if encrypt else 0))
        if encrypt:
            self._xor_data(ctx.key(b"seal", ctx.role), seq, data)
        tag = _wire.mac(ctx.key(b"sign", ctx.role), header, seq, *(_read(b) for b in data))
        ctypes.memmove(trailer.pvBuffer, header + seq + tag, _wire.SIGNATURE_SIZE)
        trailer.cbBuffer = _wire.SIGNATURE_SIZE
        for padding in _of_type(buffers, C.SECBUFFER_PADDING):
            padding.cbBuffer = 0
        ctx.send_seq += 1
        return SEC_E_OK

    def _unprotect(self, ph: Any, p_message: Any, pf_qop: Any, function: str, seal: bool) -> int:
        ctx = self._ready(ph, function)
        buffers = _buffers(p_message)
        trailer = _read(self._trailer(buffers))
        if len(trailer) < _wire.SIGNATURE_SIZE:
            return SEC_E_INVALID_TOKEN
        header, seq, tag = trailer[:4], trailer[4:12], trailer[12 : _wire.SIGNATURE_SIZE]
        data = _of_type(buffers, C.SECBUFFER_DATA)
        expected = _wire.mac(ctx.key(b"sign", ctx.peer), header, seq, *(_read(b) for b in data))
        (kind,) = struct.unpack("<I", header)
        if tag != expected or bool(kind & 1) != seal:
            return SEC_E_MESSAGE_ALTERED
        if struct.unpack("<Q", seq)[0] != ctx.recv_seq:
            return SEC_E_OUT_OF_SEQUENCE
        if kind & 2:
            self._xor_data(ctx.key(b"seal", ctx.peer), seq, data)
        ctx.recv_seq += 1
        self._put_ulong(pf_qop, C.SECQOP_WRAP_NO_ENCRYPT if seal and not kind & 2 else 0)
        return SEC_E_OK

    @staticmethod
    def _xor_data(key: bytes, nonce: bytes, data: list[SecBuffer]) -> None:
        writable = [b for b in data if not b.BufferType & C.SECBUFFER_READONLY and b.cbBuffer]
        plain = b"".join(_read(b) for b in writable)
        mixed = _wire.keystream_xor(key, nonce, plain)
        offset = 0
        for buffer in writable:
            ctypes.memmove(buffer.pvBuffer, mixed[offset:], buffer.cbBuffer)
            offset += buffer.cbBuffer

    def _MakeSignature(self, ph: Any, qop: int, p_message: Any, seq_no: int) -> int:  # noqa: N802
        return self._protect(ph, qop, p_message, "MakeSignature", seal=False)

    def _VerifySignature(self, ph: Any, p_message: Any, seq_no: int, pf_qop: Any) -> int:  # noqa: N802
        return self._unprotect(ph, p_message, pf_qop, "VerifySignature", seal=False)

    def _EncryptMessage(self, ph: Any, qop: int, p_message: Any, seq_no: int) -> int:  # noqa: N802
        return self._protect(ph, qop, p_message, "EncryptMessage", seal=True)

    def _DecryptMessage(self, ph: Any, p_message: Any, seq_no: int, pf_qop: Any) -> int:  # noqa: N802
        return self._unprotect(ph, p_message, pf_qop, "DecryptMessage", seal=True)

    # Impersonation --------------------------------------------------------------

    def _ImpersonateSecurityContext(self, ph: Any) -> int:  # noqa: N802 - C name
        ctx = self._ready(ph, "ImpersonateSecurityContext")
        if ctx.role != "acceptor" or not ctx.has_token:
            return SEC_E_NO_IMPERSONATION
        self._impersonating[int(ph.contents.dwLower)] = ctx.user
        return SEC_E_OK

    def _RevertSecurityContext(self, ph: Any) -> int:  # noqa: N802 - C name
        self._ctx(ph, "RevertSecurityContext")
        self._impersonating.pop(int(ph.contents.dwLower), None)
        return SEC_E_OK

    # Export and import ----------------------------------------------------------

    def _ExportSecurityContext(  # noqa: N802 - C name
        self, ph: Any, flags: int, p_packed: Any, p_token: Any
    ) -> int:
        ctx = self._ctx(ph, "ExportSecurityContext")
        if flags & ~(C.SECPKG_CONTEXT_EXPORT_RESET_NEW | C.SECPKG_CONTEXT_EXPORT_DELETE_OLD):
            return SEC_E_INVALID_PARAMETER  # TO_KERNEL is for kernel-mode callers
        if not p_packed:
            return SEC_E_INVALID_PARAMETER
        if not ctx.complete:
            return SEC_E_CANNOT_PACK
        reset = bool(flags & C.SECPKG_CONTEXT_EXPORT_RESET_NEW)
        blob = _wire.pack_blob(self.machine, ctx.state(reset))
        packed: SecBuffer = p_packed.contents
        packed.pvBuffer = self._alloc(blob)
        packed.cbBuffer = len(blob)
        packed.BufferType = C.SECBUFFER_EMPTY
        if p_token:
            p_token[0] = self._new_token(ctx.user) if ctx.has_token else None
        if flags & C.SECPKG_CONTEXT_EXPORT_DELETE_OLD:
            self._remove_context(int(ph.contents.dwLower))
        return SEC_E_OK

    def _ImportSecurityContextW(  # noqa: N802 - C name
        self, package_ptr: int | None, p_packed: Any, token: int | None, ph: Any
    ) -> int:
        package = _read_wstr(package_ptr)
        if package is None or package not in self.packages:
            return SEC_E_SECPKG_NOT_FOUND
        if not p_packed:
            return SEC_E_INVALID_TOKEN
        try:
            state = _wire.unpack_blob(self.machine, _read(p_packed.contents))
            ctx = _Ctx.from_state(state)
        except (WireError, KeyError, TypeError, ValueError):
            return SEC_E_INVALID_TOKEN
        if package not in (ctx.package, ctx.mech):
            return SEC_E_INVALID_TOKEN
        if token:
            self._live_token(token, "ImportSecurityContextW")
        ctx.has_token = ctx.has_token and bool(token)
        self._add_context(ctx, ph)
        return SEC_E_OK

    def _DeleteSecurityContext(self, ph: Any) -> int:  # noqa: N802 - C name
        self._ctx(ph, "DeleteSecurityContext")
        self._remove_context(int(ph.contents.dwLower))
        return SEC_E_OK

    def _FreeContextBuffer(self, address: int | None) -> int:  # noqa: N802 - C name
        if not address:
            return SEC_E_OK
        if self._buffers.pop(address, None) is None:
            gone = ("buffer", address) in self._gone
            raise self._misuse(
                "FreeContextBuffer", "double free" if gone else "unknown pointer", address
            )
        self._gone.add(("buffer", address))
        return SEC_E_OK

    # Packages -------------------------------------------------------------------

    def _EnumerateSecurityPackagesW(self, pc_packages: Any, pp_info: Any) -> int:  # noqa: N802
        if not pc_packages or not pp_info:
            return SEC_E_INVALID_PARAMETER
        pc_packages[0] = len(self.packages)
        pp_info[0] = ctypes.cast(self._alloc_infos(list(self.packages)), POINTER(SecPkgInfoW))
        return SEC_E_OK

    # kernel32 -------------------------------------------------------------------

    def _GetCurrentProcess(self) -> int:  # noqa: N802 - C name
        return _PSEUDO_PROCESS

    def _OpenProcess(self, access: int, inherit: int, pid: int) -> int:  # noqa: N802
        if pid <= 0:
            return 0
        if sys.platform != "win32" and pid != os.getpid():  # os.kill on Windows terminates
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return 0
            except PermissionError:
                pass
        value = _PROCESS_HANDLE_BASE + 4 * self._new_id()
        self._processes[value] = pid
        return value

    def _process_pid(self, handle: int | None, function: str) -> int:
        value = (handle or 0) & _POINTER_MASK
        if value == _PSEUDO_PROCESS:
            return os.getpid()
        pid = self._processes.get(value)
        if pid is None:
            raise self._misuse(function, "unknown process handle", value)
        return pid

    def _CloseHandle(self, handle: int | None) -> int:  # noqa: N802 - C name
        value = (handle or 0) & _POINTER_MASK
        if value == _PSEUDO_PROCESS:
            return 1
        if value in self._processes:
            del self._processes[value]
            self._gone.add(("process", value))
            return 1
        self._live_token(value, "CloseHandle")
        del self._tokens[value]
        self._gone.add(("token", value))
        return 1

    def _DuplicateHandle(  # noqa: N802 - C name
        self,
        source_process: int | None,
        source: int | None,
        target_process: int | None,
        p_target: Any,
        access: int,
        inherit: int,
        options: int,
    ) -> int:
        if self._process_pid(source_process, "DuplicateHandle") != os.getpid():
            return 0
        value = self._live_token((source or 0) & _POINTER_MASK, "DuplicateHandle")
        pid = self._process_pid(target_process, "DuplicateHandle")
        if not p_target:
            return 0
        user = self._tokens[value]
        if pid == os.getpid():
            p_target[0] = self._new_token(user)
        else:
            copy = _FOREIGN_TOKEN_BASE + 4 * self._new_id()
            self._sent_tokens[copy] = pid
            p_target[0] = copy
        if options & _DUPLICATE_CLOSE_SOURCE:
            del self._tokens[value]
            self._gone.add(("token", value))
        return 1
