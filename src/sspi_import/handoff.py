"""Handing a context to another process: ``export_context``, ``ImportedContext``, ``ExportFlags``.

An ``ImportedContext`` owns the handle it imported and deletes it exactly once.
``export_context`` and ``ExportFlags`` are defined in ``exported``, beside what an export
produces, and named here with the import they pair with: the buffer SSPI allocates for
the packed context is copied once into ``bytes`` and freed with ``FreeContextBuffer``
before ``export_context`` returns, and the token an export hands out goes to the
``ExportedContext``. An export that SSPI completed always reaches the caller: a cleanup
step that fails after it (``FreeContextBuffer``, closing the credentials a ``loopback``
context owns) is reported as a ``CleanupWarning`` that carries the export.
"""

from __future__ import annotations

from ctypes import byref, c_void_p
from typing import TYPE_CHECKING

from ._buffers import encode_name, readable
from ._checks import ulong
from ._raw import constants as C  # noqa: N812 - C names, read like the header
from ._raw.structs import SecHandle
from ._secbuffers import pack_buffer
from .context import SecurityContextBase
from .exported import ExportedContext, ExportFlags, check_token, export_context
from .library import api

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExportFlags", "ImportedContext", "export_context"]


_IMPORT = "ImportSecurityContextW_bare"


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
        # The bare binding converts nothing: the packed SecBuffer as bytes, the token as
        # a pointer-sized value. _own refuses a second __init__, before the call.
        packed = pack_buffer(length, buffer_type, address)
        passed = None if token_value is None else c_void_p(token_value)
        self._own(api(), handle, _IMPORT, name, packed, passed, byref(handle))
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
        for it to be imported. An export whose token was closed or detached is refused
        with ``ValueError``, not imported without it.
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
        encode_name(name)  # refused before a received copy pulls its token
        token = exported._token_to_use()
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
