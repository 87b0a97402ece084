"""A scripted SSPI at the mocked raw boundary (pytest-mock): ``Provider`` plays the C calls of a
handshake from a script of statuses and tokens and records what was freed and deleted.

Shared by ``test_handshake.py`` and ``test_context.py``; the ``provider`` fixture
(``conftest.py``) installs one and checks that every output token was freed.
"""

from __future__ import annotations

import ctypes
from typing import Any
from unittest.mock import Mock

from pytest_mock import MockerFixture

import sspi_import
from sspi_import import credentials as credentials_module
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.status_codes import SEC_E_OK
from sspi_import.credentials import Credentials
from sspi_import.handshake import DEFAULT_FLAGS, SecurityContext

CONTEXT = (0xC0, 0x7E)
CREDS = (0x1234, 0xC4ED)
Step = tuple[int | BaseException, bytes | None, int]


class Provider:
    """A scripted SSPI at the raw boundary: Mock functions that act like the C calls.

    Output tokens live in ctypes buffers this object keeps (as the package's allocation),
    so ``freed`` can be checked against ``allocated``.
    """

    def __init__(self, mocker: MockerFixture) -> None:
        self.lib: Mock = mocker.Mock(name="lib")
        self.isc: list[Step] = []
        self.asc: list[Step] = []
        self.allocated: list[int] = []
        self.freed: list[int] = []
        self.deleted: list[tuple[int, int]] = []
        self.creds_freed: list[tuple[int, int]] = []
        self.inputs: list[bytes | None] = []
        self.input_buffers: list[list[tuple[int, bytes]]] = []  # (BufferType, bytes) per call
        self.existing: list[tuple[int, int] | None] = []
        self._keep: list[Any] = []
        self.lib.AcquireCredentialsHandleW.side_effect = self._acquire
        self.lib.FreeCredentialsHandle.side_effect = self._free_creds
        self.lib.InitializeSecurityContextW.side_effect = self._isc
        self.lib.AcceptSecurityContext.side_effect = self._asc
        self.lib.CompleteAuthToken.return_value = 0
        self.lib.FreeContextBuffer.side_effect = self._free
        self.lib.DeleteSecurityContext.side_effect = self._delete
        mocker.patch.object(credentials_module, "api", return_value=self.lib)

    def _acquire(self, *args: Any) -> int:
        args[7]._obj.dwLower, args[7]._obj.dwUpper = CREDS
        return 0

    def _free_creds(self, handle: Any) -> int:
        handle = getattr(handle, "_obj", handle)  # byref(), or the structure as it is
        self.creds_freed.append((handle.dwLower, handle.dwUpper))
        return 0

    def _free(self, address: int) -> int:
        assert address in self.allocated, "FreeContextBuffer on a pointer SSPI never gave"
        self.freed.append(address)
        return 0

    def _delete(self, handle: Any) -> int:
        self.deleted.append((handle.dwLower, handle.dwUpper))  # passed as is: byref in C
        return 0

    def _run(self, script: list[Step], existing: Any, inputs: Any, new: Any, out: Any,
             attrs: Any, expiry: Any) -> int:  # fmt: skip
        status, token, granted = script.pop(0)
        if existing is None:
            self.existing.append(None)
            new._obj.dwLower, new._obj.dwUpper = CONTEXT
        else:
            self.existing.append((existing._obj.dwLower, existing._obj.dwUpper))
        if inputs is None:
            self.inputs.append(None)
            self.input_buffers.append([])
        else:
            desc = inputs._obj
            buffers = [desc.pBuffers[i] for i in range(desc.cBuffers)]
            seen = [(b.BufferType, ctypes.string_at(b.pvBuffer, b.cbBuffer)) for b in buffers]
            self.input_buffers.append(seen)
            tokens = [data for kind, data in seen if kind == C.SECBUFFER_TOKEN]
            self.inputs.append(tokens[0] if tokens else None)
        if token is not None:
            memory = ctypes.create_string_buffer(token, len(token))
            self._keep.append(memory)
            self.allocated.append(ctypes.addressof(memory))
            out._obj.pBuffers[0].pvBuffer = ctypes.addressof(memory)
            out._obj.pBuffers[0].cbBuffer = len(token)
        attrs._obj.value = granted
        expiry._obj.value = 0x7FFF_FFFF_FFFF_FFFF
        if isinstance(status, sspi_import.SspiError):
            return status.winerror  # what the C function returns: the signed LONG
        if isinstance(status, BaseException):
            raise status
        return status

    def _isc(self, *a: Any) -> int:
        assert a[3] & C.ISC_REQ_ALLOCATE_MEMORY
        return self._run(self.isc, a[1], a[6], a[8], a[9], a[10], a[11])

    def _asc(self, *a: Any) -> int:
        assert a[3] & C.ASC_REQ_ALLOCATE_MEMORY
        return self._run(self.asc, a[1], a[2], a[5], a[6], a[7], a[8])


def error(symbol: str, function: str) -> sspi_import.SspiError:
    info = sspi_import.status_info(symbol)
    assert info is not None
    return sspi_import.error_from_status(info.status, function)


def established(provider: Provider) -> SecurityContext:
    provider.isc = [(SEC_E_OK, b"token", int(DEFAULT_FLAGS))]
    ctx = SecurityContext.initiator(Credentials.acquire("NTLM"))
    ctx._owns_credentials = True
    ctx.step(None)
    return ctx
