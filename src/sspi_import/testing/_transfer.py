"""Hand-off: ExportSecurityContext, ImportSecurityContextW, and what they hand out.

A packed context is ``_wire.pack_blob`` of the context's state, in a buffer the caller
frees with ``FreeContextBuffer``; an acceptor's export also hands out a token handle
(``CloseHandle``). ``DeleteSecurityContext`` and ``FreeContextBuffer`` live here too:
they end what export and import begin.
"""

from __future__ import annotations

from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import (
    SEC_E_CANNOT_PACK,
    SEC_E_INVALID_PARAMETER,
    SEC_E_INVALID_TOKEN,
    SEC_E_OK,
    SEC_E_SECPKG_NOT_FOUND,
)
from .._raw.structs import SecBuffer
from . import _wire
from ._args import (
    read,
    read_wstr,
)
from ._state import Ctx, State
from ._wire import WireError

__all__ = ["Transfer"]


class Transfer(State):
    """The export, import, delete and free functions of ``FakeSspi``."""

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
        package = read_wstr(package_ptr)
        if package is None or package not in self.packages:
            return SEC_E_SECPKG_NOT_FOUND
        if not p_packed:
            return SEC_E_INVALID_TOKEN
        try:
            ctx = Ctx.from_state(_wire.unpack_blob(self.machine, read(p_packed.contents)))
        except WireError:
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
            gone = address in self._freed
            raise self._misuse(
                "FreeContextBuffer", "double free" if gone else "unknown pointer", address
            )
        self._freed.add(address)
        return SEC_E_OK
