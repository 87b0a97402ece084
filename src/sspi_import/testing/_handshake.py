"""Credentials and the handshake: AcquireCredentialsHandleW to CompleteAuthToken.

The simulated handshake is three tokens: initiator (``SEC_I_CONTINUE_NEEDED``),
acceptor (``SEC_I_CONTINUE_NEEDED``), initiator (``SEC_E_OK``), then the acceptor takes
the last token (``SEC_E_OK``, or ``SEC_I_COMPLETE_NEEDED`` with ``complete_needed``).
The initiator proves the password with an HMAC over both nonces; both sides derive the
same session key from the machine key.
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

from .._raw import constants as C  # noqa: N812 - C names, read like the header
from .._raw.status_codes import (
    SEC_E_BUFFER_TOO_SMALL,
    SEC_E_INCOMPLETE_MESSAGE,
    SEC_E_INVALID_PARAMETER,
    SEC_E_INVALID_TOKEN,
    SEC_E_LOGON_DENIED,
    SEC_E_NO_CREDENTIALS,
    SEC_E_OK,
    SEC_E_SECPKG_NOT_FOUND,
    SEC_E_TARGET_UNKNOWN,
    SEC_E_UNKNOWN_CREDENTIALS,
    SEC_E_UNSUPPORTED_FUNCTION,
    SEC_I_COMPLETE_NEEDED,
    SEC_I_CONTINUE_NEEDED,
)
from .._raw.structs import SEC_WINNT_AUTH_IDENTITY_W, SecPkgCredentials_KdcProxySettingsW
from . import _wire
from ._args import (
    NEVER,
    FaultError,
    buffers,
    filetime,
    of_type,
    put_ulong,
    read,
    read_counted,
    read_wstr,
)
from ._state import CRED_TAG, CTX_TAG, Cred, Ctx, State
from ._wire import WireError

__all__ = ["Handshake"]

# sspi.h request/return flags the fake grants (ISC_REQ_* and ASC_REQ_* share most bits).
_DELEGATE, _MUTUAL, _REPLAY, _SEQUENCE, _CONFIDENTIALITY = 0x1, 0x2, 0x4, 0x8, 0x10
_ALLOCATE_MEMORY, _CONNECTION = 0x100, 0x800
_ISC_INTEGRITY, _ASC_INTEGRITY = 0x10000, 0x20000
_COMMON = _DELEGATE | _MUTUAL | _REPLAY | _SEQUENCE | _CONFIDENTIALITY | _CONNECTION
_ISC_SUPPORTED = _COMMON | _ISC_INTEGRITY
_ASC_SUPPORTED = _COMMON | _ASC_INTEGRITY


class Handshake(State):
    """The credential and handshake functions of ``FakeSspi``."""

    def _negotiated(self) -> str:
        for candidate in ("NTLM", "Kerberos"):
            if candidate in self.packages:
                return candidate
        return next(p for p in self.packages if p != "Negotiate")

    def _put_token(self, output: Any, data: bytes, allocate: bool) -> None:
        tokens = of_type(buffers(output), C.SECBUFFER_TOKEN)
        if not tokens:
            if data:
                raise FaultError(SEC_E_INVALID_TOKEN)
            return
        buffer = tokens[0]
        if allocate:
            buffer.pvBuffer = self._alloc(data) if data else None
        elif data:
            if not buffer.pvBuffer or buffer.cbBuffer < len(data):
                raise FaultError(SEC_E_BUFFER_TOO_SMALL)
            ctypes.memmove(buffer.pvBuffer, data, len(data))
        buffer.cbBuffer = len(data)

    @staticmethod
    def _input_token(desc: Any) -> bytes:
        items = buffers(desc)
        tokens = of_type(items, C.SECBUFFER_TOKEN)
        if not tokens or not tokens[0].cbBuffer:
            raise FaultError(SEC_E_INVALID_TOKEN)
        data = read(tokens[0])
        # As real packages do: part of a token is SEC_E_INCOMPLETE_MESSAGE (nothing
        # consumed), bytes after a whole token go back in an EMPTY buffer as EXTRA.
        used = _wire.token_extent(data)
        if used is None:
            raise FaultError(SEC_E_INCOMPLETE_MESSAGE)
        if used < len(data):
            empty = of_type(items, C.SECBUFFER_EMPTY)
            if empty:
                empty[0].BufferType = C.SECBUFFER_EXTRA
                empty[0].cbBuffer = len(data) - used
            data = data[:used]
        return data

    def _session_key(self, ctx: Ctx) -> bytes:
        nonces = (ctx.client_nonce, ctx.server_nonce)
        names = (ctx.user.encode(), ctx.mech.encode())
        return _wire.derive(self._machine_key, b"session", *nonces, *names)

    @staticmethod
    def _proof(password: str, ctx: Ctx) -> str:
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
        package = read_wstr(package_ptr)
        if package is None or package not in self.packages:
            return SEC_E_SECPKG_NOT_FOUND
        if use not in (C.SECPKG_CRED_INBOUND, C.SECPKG_CRED_OUTBOUND, C.SECPKG_CRED_BOTH):
            return SEC_E_INVALID_PARAMETER
        user, password = self.user, self.password or ""
        if auth_data:
            identity = SEC_WINNT_AUTH_IDENTITY_W.from_address(auth_data)
            if identity.Flags != C.SEC_WINNT_AUTH_IDENTITY_UNICODE:
                return SEC_E_UNKNOWN_CREDENTIALS
            name = read_counted(identity.User, identity.UserLength)
            domain = read_counted(identity.Domain, identity.DomainLength)
            password = read_counted(identity.Password, identity.PasswordLength)
            if name:
                user = f"{domain}\\{name}" if domain else name
        if user is None and use & C.SECPKG_CRED_OUTBOUND:
            return SEC_E_NO_CREDENTIALS
        key = self._new_id("credentials")
        self._put_handle(ph_credential, key, CRED_TAG)
        self._credentials[key] = Cred(package, user, password, use)
        put_ulong(pts_expiry, NEVER)
        return SEC_E_OK

    def _FreeCredentialsHandle(self, ph: Any) -> int:  # noqa: N802 - C name
        self._lookup(ph, CRED_TAG, self._credentials, "FreeCredentialsHandle")
        key = int(ph.contents.dwLower)
        del self._credentials[key]
        return SEC_E_OK

    def _SetCredentialsAttributesW(  # noqa: N802 - C name
        self, ph: Any, attribute: int, p_buffer: int | None, size: int
    ) -> int:
        """KDC proxy settings only, on Kerberos or Negotiate credentials (as documented).

        The block is checked as the header describes it: version 1, known flags, every
        part inside ``size`` bytes, UTF-16. Recorded on the credentials (``kdc_proxy``).
        """
        cred: Cred = self._lookup(ph, CRED_TAG, self._credentials, "SetCredentialsAttributesW")
        if attribute != C.SECPKG_CRED_ATTR_KDC_PROXY_SETTINGS:
            return SEC_E_UNSUPPORTED_FUNCTION
        if cred.package.lower() not in ("kerberos", "negotiate"):
            return SEC_E_UNSUPPORTED_FUNCTION  # "only supported by Kerberos"
        header_size = ctypes.sizeof(SecPkgCredentials_KdcProxySettingsW)
        if not p_buffer or size < header_size:
            return SEC_E_INVALID_PARAMETER
        header = SecPkgCredentials_KdcProxySettingsW.from_address(p_buffer)
        if header.Version != C.KDC_PROXY_SETTINGS_V1:
            return SEC_E_INVALID_PARAMETER
        if header.Flags & ~C.KDC_PROXY_SETTINGS_FLAGS_FORCEPROXY:
            return SEC_E_INVALID_PARAMETER
        parts = (
            (header.ProxyServerOffset, header.ProxyServerLength),
            (header.ClientTlsCredOffset, header.ClientTlsCredLength),
        )
        for offset, length in parts:
            if length and (offset < header_size or offset + length > size or length % 2):
                return SEC_E_INVALID_PARAMETER
        server = None
        offset, length = parts[0]
        if length:
            try:
                server = ctypes.string_at(p_buffer + offset, length).decode("utf-16-le")
            except UnicodeDecodeError:
                return SEC_E_INVALID_PARAMETER
        cred.kdc_proxy = self._kdc_proxy = (server, int(header.Flags))
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
            cred: Cred = self._lookup(
                ph_credential, CRED_TAG, self._credentials, "InitializeSecurityContextW"
            )
            if not cred.use & C.SECPKG_CRED_OUTBOUND or cred.user is None:
                return SEC_E_NO_CREDENTIALS
            target = read_wstr(target_ptr)
            mech = self._negotiated() if cred.package == "Negotiate" else cred.package
            if mech == "Kerberos" and not target:
                return SEC_E_TARGET_UNKNOWN
            now = time.time()
            ctx = Ctx(
                role="initiator",
                package=cred.package,
                mech=mech,
                user=cred.user,
                password=cred.password,
                flags=granted,
                start=filetime(now),
                expiry=filetime(now + self.lifetime),
                stage=1,
                client_nonce=os.urandom(16),
                target=target,
            )
            token = _wire.pack_token(
                1, {"package": cred.package, "mech": mech, "nonce": ctx.client_nonce.hex()}
            )
            self._put_token(p_output, token, allocate)
            self._add_context(ctx, ph_new)
            put_ulong(pf_attr, granted | (_ALLOCATE_MEMORY if allocate else 0))
            put_ulong(pts_expiry, ctx.expiry)
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
            ph_new.contents.dwUpper = CTX_TAG
        put_ulong(pf_attr, ctx.flags | (_ALLOCATE_MEMORY if allocate else 0))
        put_ulong(pts_expiry, ctx.expiry)
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
            cred: Cred = self._lookup(
                ph_credential, CRED_TAG, self._credentials, "AcceptSecurityContext"
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
            ctx = Ctx(
                role="acceptor",
                package=cred.package,
                mech=mech,
                user="",
                password="",
                flags=granted,
                start=filetime(now),
                expiry=filetime(now + self.lifetime),
                stage=1,
                client_nonce=client_nonce,
                server_nonce=os.urandom(16),
            )
            token = _wire.pack_token(2, {"nonce": ctx.server_nonce.hex(), "mech": mech})
            self._put_token(p_output, token, allocate)
            self._add_context(ctx, ph_new)
            put_ulong(pf_attr, granted | (_ALLOCATE_MEMORY if allocate else 0))
            put_ulong(pts_expiry, ctx.expiry)
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
            ph_new.contents.dwUpper = CTX_TAG
        put_ulong(pf_attr, ctx.flags | (_ALLOCATE_MEMORY if allocate else 0))
        put_ulong(pts_expiry, ctx.expiry)
        return SEC_I_COMPLETE_NEEDED if self.complete_needed else SEC_E_OK

    def _CompleteAuthToken(self, ph: Any, p_token: Any) -> int:  # noqa: N802 - C name
        self._ctx(ph, "CompleteAuthToken")
        return SEC_E_OK
