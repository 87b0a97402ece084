"""Driving FakeSspi at the ctypes level, as the library does: the bound prototypes with the
library's status check, caller or SSPI-allocated buffers, a whole raw handshake.

Shared by the tests of the simulated provider's modules (``tests/test_fake_*.py``).
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_uint32
from typing import Any

from sspi_import import library
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.functions import PROTOTYPES
from sspi_import._raw.structs import SecBuffer, SecBufferDesc, SecHandle, TimeStamp
from sspi_import.errors import check, check_win32

ALLOCATE = 0x100
CONTINUE_NEEDED = 0x00090312
COMPLETE_NEEDED = 0x00090313


def wide(text: str) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(text.encode("utf-16-le") + b"\0\0")


def read_wide(address: int | None) -> str:
    assert address
    units: list[int] = []
    while unit := ctypes.c_uint16.from_address(address + 2 * len(units)).value:
        units.append(unit)
    return b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le")


class Checked:
    """The bound prototypes, each result handed to the library's one status check."""

    def __init__(self, api: library.Api) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._api, name)
        proto = PROTOTYPES[name]

        def call(*args: Any) -> Any:
            result = fn(*args)
            if proto.kernel32:
                return result if name == "GetCurrentProcess" else check_win32(result, name)
            return check(result, name)

        return call


class Raw:
    """Drives the fake through the bound ctypes prototypes, as the library does."""

    def __init__(self) -> None:
        self.api = Checked(library.api())

    def acquire(self, package: str, use: int, identity: Any = None) -> SecHandle:
        handle = SecHandle()
        expiry = TimeStamp()
        auth = ctypes.addressof(identity) if identity is not None else None
        self.api.AcquireCredentialsHandleW(
            None, wide(package), use, None, auth, None, None, byref(handle), byref(expiry)
        )
        return handle

    @staticmethod
    def desc(*buffers: SecBuffer) -> tuple[SecBufferDesc, Any]:
        array = (SecBuffer * len(buffers))(*buffers)
        return SecBufferDesc(0, len(buffers), ctypes.cast(array, POINTER(SecBuffer))), array

    def handshake(
        self, package: str = "NTLM", allocate: bool = False, identity: Any = None
    ) -> tuple[SecHandle, SecHandle, SecHandle, SecHandle, list[int]]:
        """A full handshake with caller buffers (or SSPI-allocated ones)."""
        client_cred = self.acquire(package, C.SECPKG_CRED_OUTBOUND, identity)
        server_cred = self.acquire(package, C.SECPKG_CRED_INBOUND)
        client, server = SecHandle(), SecHandle()
        statuses: list[int] = []
        attrs = c_uint32()
        expiry = TimeStamp()
        req = ALLOCATE if allocate else 0
        token: bytes | None = None
        target = wide("host/fake")
        for leg in range(4):
            storage = ctypes.create_string_buffer(4096)
            out = SecBuffer(
                0 if allocate else 4096,
                C.SECBUFFER_TOKEN,
                None if allocate else ctypes.addressof(storage),
            )
            out_desc, out_array = self.desc(out)
            in_desc: Any = None
            keep: Any = None
            if token is not None:
                keep = ctypes.create_string_buffer(token, len(token))
                in_desc, _ = self.desc(
                    SecBuffer(len(token), C.SECBUFFER_TOKEN, ctypes.addressof(keep))
                )
            if leg % 2 == 0:
                status = self.api.InitializeSecurityContextW(
                    byref(client_cred),
                    byref(client) if leg else None,
                    target,
                    req,
                    0,
                    0,
                    byref(in_desc) if in_desc is not None else None,
                    0,
                    byref(client),
                    byref(out_desc),
                    byref(attrs),
                    byref(expiry),
                )
            else:
                status = self.api.AcceptSecurityContext(
                    byref(server_cred),
                    byref(server) if leg > 1 else None,
                    byref(in_desc),
                    req,
                    0,
                    byref(server),
                    byref(out_desc),
                    byref(attrs),
                    byref(expiry),
                )
            statuses.append(status)
            result = out_array[0]
            token = ctypes.string_at(result.pvBuffer, result.cbBuffer) if result.cbBuffer else None
            if allocate and result.pvBuffer:
                self.api.FreeContextBuffer(result.pvBuffer)
            del keep
        return client_cred, server_cred, client, server, statuses

    def close(self, *handles: SecHandle) -> None:
        for handle in handles:
            if handle.dwUpper == 0x5EC2F4CE:
                self.api.FreeCredentialsHandle(byref(handle))
            else:
                self.api.DeleteSecurityContext(byref(handle))
