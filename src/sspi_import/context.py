"""What every security context can do, established, imported or adopted.

``SecurityContextBase`` owns a ``CtxtHandle`` (``OwnedHandle``: one owner, one lock held
for every call, copies refused) and holds the operations every context has: the
attribute queries (``QueryContextAttributesW``: user and package names, sizes,
lifespan, session key, flags), impersonation, message protection (``messages``) and
``export()`` (``handoff``). Every buffer SSPI allocates for an attribute is freed with
``FreeContextBuffer`` in ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
from collections.abc import Iterator
from ctypes import byref, c_void_p
from typing import TYPE_CHECKING, Any, NamedTuple

from ._buffers import free_context_buffer, read_utf16z
from ._filetime import filetime_to_datetime
from ._raw import constants as C  # noqa: N812 - C names, read like the header
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
from .errors import InternalError, SspiError, check, status_info
from .messages import MessageProtection

if TYPE_CHECKING:
    from .exported import ExportedContext
    from .handoff import ExportFlags

__all__ = ["ContextSizes", "SecurityContextBase"]

_INTERNAL_ERROR = status_info("SEC_E_INTERNAL_ERROR").status  # type: ignore[union-attr]


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
    ``impersonate()`` and ``export()``.

    Calls on one context are serialized: each holds the context's lock for the SSPI
    call, because the message functions keep per-context state (NTLM's RC4 stream and
    sequence numbers) and providers are not safe for concurrent calls on one context.
    ``close()`` deletes the context (``DeleteSecurityContext``) exactly once, after any
    call another thread is making on it; calls after it raise ``ValueError``.
    ``detach()`` returns the raw ``(dwLower, dwUpper)`` pair and gives up ownership.
    A context cannot be copied or pickled: ``export()`` it to move it to another process.
    """

    __slots__ = ()
    _kind = "security context"
    _how_to_move = (
        "To move a context to another process, export() it and import the export there; "
        "detach() gives up the raw (dwLower, dwUpper) pair"
    )

    @property
    def package(self) -> str | None:
        """The security package the context belongs to, when known."""
        return None

    def _release(self, handle: SecHandle) -> None:
        check(self._lib.DeleteSecurityContext(handle), "DeleteSecurityContext")

    def _public(self, handle: SecHandle) -> tuple[int, int]:
        return (handle.dwLower, handle.dwUpper)

    def export(self, flags: ExportFlags | int = 0) -> ExportedContext:
        """Serialize this context for another process: ``export_context(self, flags)``."""
        from .handoff import export_context  # handoff builds on this module

        return export_context(self, flags)

    def _consumed(self) -> None:
        """An export with ``DELETE_OLD`` deleted the context: release what it held besides."""

    # Attributes -------------------------------------------------------------------

    def _query(self, attribute: int, out: ctypes.Structure) -> None:
        self._call("QueryContextAttributesW", attribute, byref(out))

    @property
    def user_name(self) -> str:
        r"""The authenticated user, as the package names it (NTLM: ``DOMAIN\user``)."""
        names = SecPkgContext_NamesW()
        self._query(C.SECPKG_ATTR_NAMES, names)
        try:
            return read_utf16z(names.sUserName) if names.sUserName else ""
        finally:
            if names.sUserName:
                free_context_buffer(self._lib, names.sUserName)

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
            free_context_buffer(self._lib, ctypes.cast(pointer, c_void_p))

    def sizes(self) -> ContextSizes:
        """Token, signature, block and trailer sizes (``SECPKG_ATTR_SIZES``), asked once.

        A closed context raises ``ValueError``, like every other call, cached or not.
        """
        cached: ContextSizes | None = getattr(self, "_sizes", None)
        if cached is not None and self._handle is None:
            raise self._closed_error()
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
            free_context_buffer(self._lib, raw.SessionKey)

    @property
    def flags(self) -> int:
        """The context's attribute flags as the package reports them (``SECPKG_ATTR_FLAGS``).

        ``ISC_RET_*`` bits for the initiator's side, ``ASC_RET_*`` for the acceptor's.
        """
        raw = SecPkgContext_Flags()
        self._query(C.SECPKG_ATTR_FLAGS, raw)
        return int(raw.Flags)

    # Impersonation ----------------------------------------------------------------

    @contextlib.contextmanager
    def impersonate(self) -> Iterator[None]:
        """Run the ``with`` body as the client (``ImpersonateSecurityContext``).

        Always reverts (``RevertSecurityContext``), also when the body raises.
        Impersonation is per thread: only the calling thread runs as the client. Other
        threads may use the context meanwhile; closing it inside the body is safe (it is
        deleted after the revert), and ``detach()`` is refused until the body ends.
        """
        with self._lock:
            handle = self._live()
            check(self._lib.ImpersonateSecurityContext(handle), "ImpersonateSecurityContext")
            self._pins += 1  # closed meanwhile: deleted only after the revert (_unpin)
        try:
            yield
        finally:
            try:
                with self._lock:
                    status = self._lib.RevertSecurityContext(handle)
                check(status, "RevertSecurityContext")
            finally:
                self._unpin()
