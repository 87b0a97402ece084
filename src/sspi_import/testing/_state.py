"""What the simulated provider holds: handles, the ledger of what is out, misuse.

Handle values are never reused: contexts, credentials, tokens and process handles are
numbered by one counter per kind, so a stale value (deleted, freed, closed) is told
from an unknown one by its number alone, with nothing kept per closed handle. Buffer
addresses are reused by the allocator, so the last ``FREED_REMEMBERED`` freed
addresses are remembered (a bounded LRU) to report a double free as such; an older
one is still refused, as an "unknown pointer".
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
import time
from collections import OrderedDict
from ctypes import POINTER
from typing import Any, NamedTuple

from .._raw.status_codes import (
    SEC_E_CONTEXT_EXPIRED,
    SEC_E_INVALID_HANDLE,
    SEC_E_INVALID_PARAMETER,
)
from .._raw.structs import SecHandle, SecPkgInfoW
from . import _wire
from ._args import (
    FaultError,
    filetime,
)
from ._wire import WireError

__all__ = ["FREED_REMEMBERED", "Cred", "Ctx", "Misuse", "Outstanding", "Recent", "State"]

CTX_TAG = 0x5EC7F4CE
CRED_TAG = 0x5EC2F4CE
LOCAL_TOKEN_BASE = 0x0000_1000
PROCESS_HANDLE_BASE = 0x2000_0000
FOREIGN_TOKEN_BASE = 0x4000_0000  # tokens another process's fake duplicated into us
FREED_REMEMBERED = 1024
"""How many freed buffer addresses (and closed foreign tokens) are remembered."""

PACKAGE_INFO: dict[str, tuple[int, int, int, str]] = {
    # name: (fCapabilities, wRPCID, cbMaxToken, Comment), as Windows reports them
    "NTLM": (0x00082B37, 10, 2888, "NTLM Security Package"),
    "Kerberos": (0x000F3BBF, 16, 48256, "Microsoft Kerberos V1.0"),
    "Negotiate": (0x00083BB3, 9, 48256, "Microsoft Package Negotiator"),
}


class Misuse(NamedTuple):
    """One call the real DLL would also have refused with ``SEC_E_INVALID_HANDLE``."""

    function: str
    """The function called, e.g. ``"FreeContextBuffer"``."""
    kind: str
    """What was wrong: ``"double free"``, ``"deleted context"``, ``"unknown handle"``..."""
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
        """True when anything at all is outstanding."""
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


class Recent:
    """A set that keeps only the ``size`` most recently added values (an LRU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[int, None] = OrderedDict()

    def add(self, value: int) -> None:
        self._items[value] = None
        self._items.move_to_end(value)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def discard(self, value: int) -> None:
        self._items.pop(value, None)

    def __contains__(self, value: object) -> bool:
        return value in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclasses.dataclass
class Cred:
    """One credential handle."""

    package: str
    user: str | None
    password: str
    use: int
    kdc_proxy: tuple[str | None, int] | None = None  # SetCredentialsAttributesW: (server, flags)


@dataclasses.dataclass
class Ctx:
    """One security context, in the handshake or complete."""

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
    _keys: dict[tuple[bytes, str], bytes] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return self.stage == 2

    def key(self, purpose: bytes, sender: str) -> bytes:
        """A subkey of the session key, derived once per purpose and sender."""
        found = self._keys.get((purpose, sender))
        if found is None:
            found = _wire.derive(self.session_key, purpose, sender.encode())
            self._keys[(purpose, sender)] = found
        return found

    @property
    def peer(self) -> str:
        return "acceptor" if self.role == "initiator" else "initiator"

    def describe(self) -> str:
        state = "complete" if self.complete else "handshake in progress"
        return f"{self.role} {self.package} context of {self.user!r} ({state})"

    def state(self, reset: bool) -> _wire.State:
        """What a packed context carries."""
        return _wire.State(
            role=self.role,
            package=self.package,
            mech=self.mech,
            user=self.user,
            flags=self.flags,
            start=self.start,
            expiry=self.expiry,
            session_key=self.session_key,
            send_seq=0 if reset else self.send_seq,
            recv_seq=0 if reset else self.recv_seq,
            has_token=self.has_token,
            target=self.target,
        )

    @classmethod
    def from_state(cls, state: _wire.State) -> Ctx:
        """The context a packed state describes; ``WireError`` if it is inconsistent."""
        if state.role not in ("initiator", "acceptor") or len(state.session_key) != 32:
            raise WireError("garbled packed context")
        return cls(
            role=state.role,
            package=state.package,
            mech=state.mech,
            user=state.user,
            password="",
            flags=state.flags,
            start=state.start,
            expiry=state.expiry,
            stage=2,
            session_key=state.session_key,
            send_seq=state.send_seq,
            recv_seq=state.recv_seq,
            has_token=state.has_token,
            target=state.target,
        )


class State:
    """The tables every part of the fake shares, and the helpers that keep them."""

    packages: tuple[str, ...]
    user: str | None
    password: str | None
    machine: str
    lifetime: float
    complete_needed: bool

    def _init_state(self) -> None:
        self.internal_errors: list[str] = []
        """Exceptions caught inside callbacks (each returned ``SEC_E_INTERNAL_ERROR``)."""
        self.misuses: list[Misuse] = []
        """Calls refused as the real DLL would (double free, double delete, ...)."""
        self._machine_key = _wire.machine_key(self.machine)
        self._lock = threading.RLock()
        self._counters = {"context": 1, "credentials": 1, "token": 1, "process": 1}
        self._contexts: dict[int, Ctx] = {}
        self._credentials: dict[int, Cred] = {}
        self._buffers: dict[int, Any] = {}
        self._tokens: dict[int, str] = {}
        self._processes: dict[int, int] = {}
        self._impersonating: dict[int, str] = {}
        self._freed = Recent(FREED_REMEMBERED)  # buffer addresses freed lately
        self._closed_foreign = Recent(FREED_REMEMBERED)
        self._sent_tokens: dict[int, int] = {}
        self._kdc_proxy: tuple[str | None, int] | None = None

    # Numbering -------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._counters[kind]
        self._counters[kind] = value + 1
        return value

    def _was_issued(self, kind: str, number: int) -> bool:
        """Whether ``number`` was handed out for ``kind`` (then it is stale if not live)."""
        return 1 <= number < self._counters[kind]

    def _numbered(self, value: int, base: int, kind: str) -> bool:
        """Whether ``value`` is a handle value ``base + 4 * n`` this fake issued."""
        offset = value - base
        return offset > 0 and offset % 4 == 0 and self._was_issued(kind, offset // 4)

    # Misuse and look-ups ----------------------------------------------------------

    def _misuse(self, function: str, kind: str, value: int) -> FaultError:
        self.misuses.append(Misuse(function, kind, value))
        return FaultError(SEC_E_INVALID_HANDLE)

    def _lookup(self, ph: Any, tag: int, table: dict[int, Any], function: str) -> Any:
        if not ph:
            raise self._misuse(function, "NULL handle", 0)
        handle: SecHandle = ph.contents
        key = int(handle.dwLower)
        found = table.get(key) if handle.dwUpper == tag else None
        if found is None:
            kind = "credentials" if tag == CRED_TAG else "context"
            gone = handle.dwUpper == tag and self._was_issued(kind, key)
            raise self._misuse(function, f"{'deleted' if gone else 'unknown'} {kind}", key)
        return found

    def _ctx(self, ph: Any, function: str) -> Ctx:
        ctx: Ctx = self._lookup(ph, CTX_TAG, self._contexts, function)
        return ctx

    def _ready(self, ph: Any, function: str) -> Ctx:
        ctx = self._ctx(ph, function)
        if not ctx.complete:
            raise FaultError(SEC_E_INVALID_HANDLE)
        if filetime(time.time()) >= ctx.expiry:
            raise FaultError(SEC_E_CONTEXT_EXPIRED)
        return ctx

    # Handles ---------------------------------------------------------------------

    @staticmethod
    def _put_handle(ph: Any, key: int, tag: int) -> None:
        if not ph:
            raise FaultError(SEC_E_INVALID_PARAMETER)
        ph.contents.dwLower = key
        ph.contents.dwUpper = tag

    def _add_context(self, ctx: Ctx, ph: Any) -> int:
        key = self._new_id("context")
        self._put_handle(ph, key, CTX_TAG)
        self._contexts[key] = ctx
        return key

    def _remove_context(self, key: int) -> None:
        del self._contexts[key]
        self._impersonating.pop(key, None)

    # Tokens ----------------------------------------------------------------------

    def _new_token(self, user: str) -> int:
        value = LOCAL_TOKEN_BASE + 4 * self._new_id("token")
        self._tokens[value] = user
        return value

    def _live_token(self, value: int, function: str) -> int:
        if value in self._tokens:
            return value
        if value in self._sent_tokens:
            raise self._misuse(function, "handle of another process", value)
        if value >= FOREIGN_TOKEN_BASE and value not in self._closed_foreign:
            self._tokens[value] = "a token duplicated from another process"
            return value
        gone = self._numbered(value, LOCAL_TOKEN_BASE, "token") or value in self._closed_foreign
        gone = gone or self._numbered(value, PROCESS_HANDLE_BASE, "process")
        raise self._misuse(function, "closed handle" if gone else "unknown handle", value)

    def _drop_token(self, value: int) -> None:
        del self._tokens[value]
        if value >= FOREIGN_TOKEN_BASE:
            self._closed_foreign.add(value)

    # Buffers ---------------------------------------------------------------------

    def _alloc(self, data: bytes) -> int:
        buffer = ctypes.create_string_buffer(data, max(len(data), 1))
        address = ctypes.addressof(buffer)
        self._buffers[address] = buffer
        self._freed.discard(address)
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

    def _alloc_info_pointer(self, names: list[str]) -> Any:
        return ctypes.cast(self._alloc_infos(names), POINTER(SecPkgInfoW))

    @staticmethod
    def _info(package: str) -> tuple[int, int, int, str]:
        return PACKAGE_INFO.get(package, (0x00000003, 0xFFFF, 12000, f"{package} (simulated)"))

    # The ledger ------------------------------------------------------------------

    def outstanding(self) -> Outstanding:
        """What has been handed out and not released yet."""
        with self._lock:
            details = [
                *(f"context {i:#x}: {c.describe()}" for i, c in self._contexts.items()),
                *(
                    f"credentials {i:#x}: {c.package} for {c.user!r}"
                    + ("" if c.kdc_proxy is None else f" (KDC proxy {c.kdc_proxy[0]!r})")
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
    def kdc_proxy(self) -> tuple[str | None, int] | None:
        """The KDC proxy settings the latest ``SetCredentialsAttributesW`` set, or ``None``.

        ``(server, flags)``: the proxy server as the caller wrote it (``None`` if it gave
        none) and ``KDC_PROXY_SETTINGS_FLAGS_*`` (``1``: ``FORCEPROXY``). The fake records
        it on the credentials and talks to no KDC: Kerberos is simulated.
        """
        with self._lock:
            return self._kdc_proxy

    @property
    def sent_tokens(self) -> dict[int, int]:
        """Tokens duplicated into other processes: handle value there -> target pid."""
        with self._lock:
            return dict(self._sent_tokens)
