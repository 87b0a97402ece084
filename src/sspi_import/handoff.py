"""Handing a context to another process: ``export_context``, ``ImportedContext``, ``ExportFlags``.

Ownership is decided here: an ``ImportedContext`` owns the handle it imported and
deletes it exactly once; the buffer SSPI allocates for the packed context is copied once
into ``bytes`` and freed with ``FreeContextBuffer`` before ``export_context`` returns;
the token an export hands out goes to the ``ExportedContext`` (``exported``, which makes
the call). An export that SSPI completed always reaches the caller: a cleanup step that
fails after it (``FreeContextBuffer``, closing the credentials a ``loopback`` context
owns) is reported as a ``CleanupWarning`` that carries the export.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from ._buffers import encode_name, readable
from ._checks import ulong
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import SecBuffer, SecHandle
from .adopt import ForeignContextHandle
from .context import SecurityContextBase
from .exported import ExportedContext, check_token, export_handle
from .library import api

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExportFlags", "ImportedContext", "export_context"]


class ExportFlags(enum.IntFlag):
    """``fFlags`` of ``ExportSecurityContext``.

    ``SECPKG_CONTEXT_EXPORT_TO_KERNEL`` is deliberately absent: it is for kernel-mode
    callers only, and ``export_context`` refuses it before calling SSPI.
    """

    NONE = 0
    """Export a copy; the source context stays usable."""
    RESET_NEW = C.SECPKG_CONTEXT_EXPORT_RESET_NEW
    """Reset the new context to its initial state (Microsoft's words for this flag)."""
    DELETE_OLD = C.SECPKG_CONTEXT_EXPORT_DELETE_OLD
    """Delete the source context: it is consumed and must never be deleted again."""


class ImportedContext(SecurityContextBase):
    """A security context imported from a packed blob; deleted on ``close()`` or ``with`` exit.

    Importing happens at construction, like ``open()``::

        with ImportedContext("NTLM", blob, token) as ctx:
            ...

    ``blob`` is the packed context (``bytes``, ``bytearray``, ``memoryview``); SSPI reads
    it in place, without a copy, where the buffer allows. ``token`` is the token handle
    from the export (or ``None``), a handle of *this* process; it stays owned by the
    caller (or its ``ExportedContext``), who may close it once the import returned.
    Microsoft does not say whether ``ImportSecurityContextW`` borrows or takes the
    token; this follows the plausible reading (it keeps its own reference), to be
    confirmed by the Windows lane (``test_windows_handoff.py``, the two token-ownership
    tests). Bad input raises ``TypeError``/``ValueError`` before any call; a failed
    import raises the ``SspiError`` subclass for the status.

    For a Negotiate context, ``export_context`` records the negotiated package
    (``NTLM`` or ``Kerberos``) as the name to import under (``NEGOTIATE_IMPORTS_AS``).
    """

    _package: str

    def __init__(
        self,
        package: str,
        blob: bytes | bytearray | memoryview,
        token: int | None = None,
        *,
        buffer_type: int = C.SECBUFFER_EMPTY,
    ) -> None:
        name = encode_name(package)
        keepalive, address, length = readable(blob)
        token_value = None if token is None else check_token(token)
        if type(buffer_type) is not int or buffer_type:  # 0, the default, is fine as it is
            buffer_type = ulong(buffer_type, "buffer_type")
        self._package = package
        handle = SecHandle()
        packed = SecBuffer(length, buffer_type, address)
        # _own refuses a second __init__, before the call.
        self._own(api(), handle, "ImportSecurityContextW", name, packed, token_value, handle)
        del keepalive

    @classmethod
    def from_exported(cls, exported: ExportedContext, package: str | None = None) -> Self:
        """Import what ``export_context`` produced, with its package, buffer type and token.

        ``package`` overrides (or supplies, when the export could not tell) the package.
        A copy made for sending (``for_process(other pid)``, ``for_any_process()``) is
        refused with ``ValueError`` before any call: its token is not a handle of this
        process; so is a received copy whose token was duplicated for another process.
        A received ``for_any_process()`` copy pulls its token from the exporter here
        (``ExportedContext.from_bytes`` says what that raises when it cannot). The token
        is held open for the import: another thread's ``close()`` of ``exported`` waits
        for it to be imported.
        """
        if not isinstance(exported, ExportedContext):
            raise TypeError(f"expected an ExportedContext, not {type(exported).__name__}")
        exported._check_importable()
        name = package if package is not None else exported.package
        if name is None:
            raise ValueError(
                "the exported context does not say which package it belongs to; "
                "pass it: ImportedContext.from_exported(exported, package='NTLM')"
            )
        token = exported._open_token()
        if token is None:
            return cls(name, exported.blob, None, buffer_type=exported.buffer_type)
        value, pin = token._pin()
        try:
            return cls(name, exported.blob, value, buffer_type=exported.buffer_type)
        finally:
            pin.release()

    @property
    def package(self) -> str:
        """The package name the context was imported with."""
        return self._package

    def _describe(self, *, closed: bool) -> str:
        state = "closed" if closed else "open"
        return f"<ImportedContext package={self._package!r} {state}>"


def export_context(
    context: SecurityContextBase | ForeignContextHandle,
    flags: ExportFlags | int = ExportFlags.NONE,
) -> ExportedContext:
    """Serialize ``context`` with ``ExportSecurityContext`` so another process can import it.

    ``context`` is a context of this library, or a handle from elsewhere, which is not
    taken over: a ctypes ``SecHandle``, a raw ``(dwLower, dwUpper)`` pair, the integer
    pywin32's ``PyCtxtHandle.Detach()`` returns, or a pywin32 ``PyCtxtHandle`` (read in
    place). With ``ExportFlags.DELETE_OLD`` SSPI deletes the source: a context of this
    library is then marked closed and never deleted again (also if an interrupt lands
    right after the call), and a pywin32 object is detached so that pywin32 never
    deletes it either. The packed buffer SSPI allocates is copied once and freed with
    ``FreeContextBuffer`` whatever happens.

    The export holds the context's lock: it waits for a call another thread is making
    on the context, and ``close()`` waits for it. An export SSPI completed is never
    lost: if a cleanup step after it fails, the export is returned and a
    ``CleanupWarning`` (carrying it as ``.result``) reports the failure; where warnings
    are errors, that warning is raised instead, still carrying the export.
    """
    return export_handle(context, flags)
