"""FakeSspi's message protection (``testing/_messages.py``): at the ctypes level and through the
public API (sign, verify, encrypt, decrypt; tampering, replay, reflection, expiry).
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_uint32

import pytest

import sspi_import
from fake_raw import Raw
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.structs import SecBuffer
from sspi_import.testing import FakeSspi


def test_wrap_no_encrypt_raw(fake: FakeSspi) -> None:
    raw = Raw()
    *handles, _ = raw.handshake()
    client, server = handles[2], handles[3]
    message = ctypes.create_string_buffer(b"plain", 5)
    trailer = ctypes.create_string_buffer(32)
    desc, _array = raw.desc(
        SecBuffer(32, C.SECBUFFER_TOKEN, ctypes.addressof(trailer)),
        SecBuffer(5, C.SECBUFFER_DATA, ctypes.addressof(message)),
    )
    raw.api.EncryptMessage(byref(client), C.SECQOP_WRAP_NO_ENCRYPT, byref(desc), 0)
    assert message.raw[:5] == b"plain"
    qop = c_uint32()
    raw.api.DecryptMessage(byref(server), byref(desc), 0, byref(qop))
    assert qop.value == C.SECQOP_WRAP_NO_ENCRYPT
    with pytest.raises(sspi_import.SspiError) as info:
        raw.api.EncryptMessage(byref(client), 5, byref(desc), 0)
    assert info.value.symbol == "SEC_E_QOP_NOT_SUPPORTED"
    raw.close(*handles)


def test_public_api_end_to_end(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Negotiate")
    with client, server:
        assert server.user_name == "EXAMPLE\\alice"
        assert client.user_name == "EXAMPLE\\alice"
        assert server.package_name == "NTLM"
        assert client.session_key() == server.session_key()
        start, end = server.lifespan
        assert start is not None
        assert end is not None
        assert end > start
        signature = client.sign(b"hello")
        server.verify(b"hello", signature)
        sealed = server.encrypt(b"secret")
        assert b"secret" not in sealed
        assert client.decrypt(sealed) == b"secret"
        with server.impersonate():
            assert fake.impersonating == "EXAMPLE\\alice"
        assert fake.impersonating is None
        with pytest.raises(sspi_import.SspiError) as info, client.impersonate():
            pass
        assert info.value.symbol == "SEC_E_NO_IMPERSONATION"


def test_tampering_replay_and_reflection(fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        first, second = client.sign(b"one"), client.sign(b"two")
        with pytest.raises(sspi_import.MessageAlteredError):
            server.verify(b"onE", first)
        with pytest.raises(sspi_import.OutOfSequenceError):
            server.verify(b"two", second)  # "one" was never accepted
        server.verify(b"one", first)
        with pytest.raises(sspi_import.OutOfSequenceError):
            server.verify(b"one", first)  # replay
        server.verify(b"two", second)
        with pytest.raises(sspi_import.MessageAlteredError):
            client.verify(b"three", client.sign(b"three"))  # reflected to its sender
        sealed = bytearray(server.encrypt(b"payload"))
        sealed[-1] ^= 1
        with pytest.raises(sspi_import.MessageAlteredError):
            client.decrypt(bytes(sealed))


def test_expired_context() -> None:
    with FakeSspi(lifetime=0) as fake:
        client, server = sspi_import.loopback("NTLM")
        with client, server, pytest.raises(sspi_import.ContextExpiredError):
            client.sign(b"late")
        fake.assert_no_leaks()
