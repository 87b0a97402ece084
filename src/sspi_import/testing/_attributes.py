"""What a context answers: QueryContextAttributesW, impersonation, the package list."""

from __future__ import annotations

from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import (
    SEC_E_INVALID_HANDLE,
    SEC_E_INVALID_PARAMETER,
    SEC_E_NO_IMPERSONATION,
    SEC_E_OK,
    SEC_E_UNSUPPORTED_FUNCTION,
)
from .._raw.structs import (
    SecPkgContext_Flags,
    SecPkgContext_Lifespan,
    SecPkgContext_NamesW,
    SecPkgContext_NegotiationInfoW,
    SecPkgContext_PackageInfoW,
    SecPkgContext_SessionKey,
    SecPkgContext_Sizes,
)
from . import _wire
from ._state import State

__all__ = ["Attributes"]

_SECPKG_NEGOTIATION_COMPLETE, _SECPKG_NEGOTIATION_IN_PROGRESS = 0, 2


class Attributes(State):
    """The query, impersonation and package functions of ``FakeSspi``."""

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
            info.PackageInfo = self._alloc_info_pointer([ctx.package])
            return SEC_E_OK
        if attribute == C.SECPKG_ATTR_NEGOTIATION_INFO:
            if ctx.package != "Negotiate":
                return SEC_E_UNSUPPORTED_FUNCTION
            negotiation = SecPkgContext_NegotiationInfoW.from_address(p_buffer)
            negotiation.PackageInfo = self._alloc_info_pointer([ctx.mech])
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

    # Impersonation --------------------------------------------------------------

    def _ImpersonateSecurityContext(self, ph: Any) -> int:  # noqa: N802 - C name
        ctx = self._ready(ph, "ImpersonateSecurityContext")
        if ctx.role != "acceptor" or not ctx.has_token:
            return SEC_E_NO_IMPERSONATION
        self._impersonating[int(ph.contents.dwLower)] = ctx.user
        return SEC_E_OK

    def _QuerySecurityContextToken(self, ph: Any, p_token: Any) -> int:  # noqa: N802
        """A new token of the context's client, in the ledger with the export tokens.

        As ``ImpersonateSecurityContext``: only an established acceptor context that
        carries a logon token has one (``SEC_E_NO_IMPERSONATION`` otherwise).
        """
        ctx = self._ready(ph, "QuerySecurityContextToken")
        if not p_token:
            return SEC_E_INVALID_PARAMETER
        if ctx.role != "acceptor" or not ctx.has_token:
            return SEC_E_NO_IMPERSONATION
        p_token[0] = self._new_token(ctx.user)
        return SEC_E_OK

    def _RevertSecurityContext(self, ph: Any) -> int:  # noqa: N802 - C name
        self._ctx(ph, "RevertSecurityContext")
        self._impersonating.pop(int(ph.contents.dwLower), None)
        return SEC_E_OK

    # Packages -------------------------------------------------------------------

    def _EnumerateSecurityPackagesW(self, pc_packages: Any, pp_info: Any) -> int:  # noqa: N802
        if not pc_packages or not pp_info:
            return SEC_E_INVALID_PARAMETER
        pc_packages[0] = len(self.packages)
        pp_info[0] = self._alloc_info_pointer(list(self.packages))
        return SEC_E_OK
