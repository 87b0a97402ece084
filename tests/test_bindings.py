"""``ChannelBindings``: the ``SEC_CHANNEL_BINDINGS`` layout, RFC 5929, and the handshake.

The layout is checked field by field through the ctypes ``SEC_CHANNEL_BINDINGS`` (which
``tests/test_abi.py`` holds against the SDK headers). ``tls_server_end_point`` is checked
against requests-ntlm's own implementation on certificates built with ``cryptography``,
and without ``cryptography`` on a fixed certificate. On sspi-rs, which enforces bindings,
equal bindings are accepted and different ones refused with ``BadBindingsError``, with
sspi_import on both sides and with pyspnego's pure-Python NTLM client.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest

import sspi_import
from sspi_import import BadBindingsError, ChannelBindings, Identity, SecurityContext
from sspi_import._raw.structs import SEC_CHANNEL_BINDINGS
from sspi_import.credentials import Credentials

PREFIX = b"tls-server-end-point:"

# A self-signed ECDSA P-256 certificate signed with ecdsa-with-SHA384 (OID
# 1.2.840.10045.4.3.3), made once with `cryptography`: its binding hash is SHA-384.
ECDSA_SHA384_DER = bytes.fromhex(
    "3082010f3081b7a003020102020101300a06082a8648ce3d04030330123110300e0603550403"
    "0c076578616d706c65301e170d3236303130313030303030305a170d33353132333030303030"
    "30305a30123110300e06035504030c076578616d706c653059301306072a8648ce3d02010608"
    "2a8648ce3d03010703420004746c95e1ac5bceb89eb728de58135f87fedbd7f04b4a6f18eb76"
    "9f42d4ad4727873e6e244913c7ada79556f06ca105ccf670c5a8a118e20bce895b6a945f1379"
    "300a06082a8648ce3d040303034700304402207013af2f35519f3daad3306e12ce3849673f19"
    "680c16b10dc9b959aa4918651f0220364f0d08a70e7686cec036c86800761e5ec63d75c0f199"
    "3806d17618ef14a93a"
)


def header(block: bytes) -> SEC_CHANNEL_BINDINGS:
    return SEC_CHANNEL_BINDINGS.from_buffer_copy(block[: ctypes.sizeof(SEC_CHANNEL_BINDINGS)])


# Layout ------------------------------------------------------------------------------


def test_layout_is_a_header_then_the_data_it_points_at() -> None:
    cb = ChannelBindings(
        initiator_addr_type=2,
        initiator_address=b"\x7f\0\0\x01",
        acceptor_addr_type=24,
        acceptor_address=b"\0" * 15 + b"\x01",
        application_data=b"app",
    )
    block = bytes(cb)
    size = ctypes.sizeof(SEC_CHANNEL_BINDINGS)
    assert size == 32
    h = header(block)
    assert (h.dwInitiatorAddrType, h.cbInitiatorLength, h.dwInitiatorOffset) == (2, 4, 32)
    assert (h.dwAcceptorAddrType, h.cbAcceptorLength, h.dwAcceptorOffset) == (24, 16, 36)
    assert (h.cbApplicationDataLength, h.dwApplicationDataOffset) == (3, 52)
    assert block[32:36] == b"\x7f\0\0\x01"
    assert block[36:52] == b"\0" * 15 + b"\x01"
    assert block[52:] == b"app"
    assert len(block) == 55
    assert ChannelBindings.from_bytes(block) == cb
    assert cb.to_bytes() == block


def test_application_data_only_is_what_tls_uses() -> None:
    block = ChannelBindings(application_data=b"xyz").to_bytes()
    h = header(block)
    assert (h.cbInitiatorLength, h.dwInitiatorOffset, h.cbAcceptorLength) == (0, 0, 0)
    assert (h.cbApplicationDataLength, h.dwApplicationDataOffset) == (3, 32)
    assert block == bytes(32 - 8) + b"\x03\0\0\0\x20\0\0\0" + b"xyz"


def test_same_bytes_as_sspilib() -> None:
    raw = pytest.importorskip("sspilib.raw")
    ours = ChannelBindings(
        initiator_addr_type=2, initiator_address=b"ini", application_data=b"appdata"
    )
    theirs = raw.SecChannelBindings(
        initiator_addr_type=2, initiator_addr=b"ini", application_data=b"appdata"
    )
    buffer = theirs.get_sec_buffer_copy()
    assert buffer.buffer_type == sspi_import._raw.constants.SECBUFFER_CHANNEL_BINDINGS
    assert bytes(buffer.data) == bytes(ours)


def test_value_semantics() -> None:
    a = ChannelBindings(application_data=b"x")
    assert a == ChannelBindings(application_data=bytearray(b"x"))
    assert a != ChannelBindings(application_data=b"y")
    assert hash(a) == hash(ChannelBindings(application_data=b"x"))
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError, match="immutable"):
        a._application_data = b"z"
    assert "tls-server-end-point:<32-byte hash>" in repr(
        ChannelBindings(application_data=PREFIX + bytes(32))
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"application_data": "text"}, TypeError),
        ({"application_data": 5}, TypeError),
        ({"initiator_address": None}, TypeError),
        ({"initiator_addr_type": -1}, ValueError),
        ({"acceptor_addr_type": 1 << 32}, ValueError),
        ({"acceptor_addr_type": True}, TypeError),
        ({"acceptor_addr_type": "2"}, TypeError),
    ],
)
def test_bad_input_is_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ChannelBindings(**kwargs)


@pytest.mark.parametrize(
    "block",
    [
        b"",
        bytes(31),
        bytes(24) + b"\x05\0\0\0\x20\0\0\0" + b"abc",  # runs past the end
        bytes(24) + b"\x01\0\0\0\x04\0\0\0" + b"a",  # offset inside the header
    ],
)
def test_from_bytes_refuses_bad_blocks(block: bytes) -> None:
    with pytest.raises(ValueError, match=r"channel bindings|outside"):
        ChannelBindings.from_bytes(block)


# RFC 5929 tls-server-end-point ------------------------------------------------------


def test_fixed_ecdsa_sha384_certificate_uses_sha384() -> None:
    cb = ChannelBindings.tls_server_end_point(ECDSA_SHA384_DER)
    assert cb.application_data == PREFIX + hashlib.sha384(ECDSA_SHA384_DER).digest()
    assert cb.initiator_address == cb.acceptor_address == b""


def _certificate(key: Any, algorithm: Any, padding: Any = None) -> bytes:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
    )
    kwargs = {} if padding is None else {"rsa_padding": padding}
    cert = builder.sign(key, algorithm, **kwargs)
    der: bytes = cert.public_bytes(Encoding.DER)
    return der


def _cases() -> list[Any]:
    return [
        pytest.param("rsa", "SHA224", None, "sha224", id="rsa-sha224"),
        pytest.param("rsa", "SHA256", None, "sha256", id="rsa-sha256"),
        pytest.param("rsa", "SHA384", None, "sha384", id="rsa-sha384"),
        pytest.param("rsa", "SHA512", None, "sha512", id="rsa-sha512"),
        pytest.param("rsa", "SHA384", "pss", "sha384", id="rsa-pss-sha384"),
        pytest.param("ec", "SHA256", None, "sha256", id="ecdsa-sha256"),
        pytest.param("ec", "SHA512", None, "sha512", id="ecdsa-sha512"),
    ]


@pytest.mark.parametrize(("kind", "hash_name", "padding", "expected"), _cases())
def test_tls_server_end_point_matches_requests_ntlm(
    kind: str, hash_name: str, padding: str | None, expected: str
) -> None:
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding

    algorithm = getattr(hashes, hash_name)()
    if kind == "rsa":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    pad = None
    if padding == "pss":
        pad = rsa_padding.PSS(rsa_padding.MGF1(algorithm), rsa_padding.PSS.DIGEST_LENGTH)
    try:
        der = _certificate(key, algorithm, pad)
    except Exception as exc:  # an OpenSSL build may refuse SHA-1 signatures
        pytest.skip(f"cryptography cannot sign with {hash_name}: {exc}")
    cb = ChannelBindings.tls_server_end_point(der)
    assert cb.application_data == PREFIX + hashlib.new(expected, der).digest()
    requests_ntlm = pytest.importorskip("requests_ntlm.requests_ntlm")
    assert cb.application_data == PREFIX + requests_ntlm._get_certificate_hash(der)


def test_ed25519_has_no_binding() -> None:
    """RFC 5929 4.1: no single hash, no binding (requests-ntlm falls back to SHA-256)."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives.asymmetric import ed25519

    der = _certificate(ed25519.Ed25519PrivateKey.generate(), None)
    with pytest.raises(ValueError, match="Ed25519"):
        ChannelBindings.tls_server_end_point(der)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length is not DER
        b"\x30\x03\x02\x01\x01",  # no signatureAlgorithm after tbsCertificate
        b"\x04\x00",  # not a SEQUENCE
        ECDSA_SHA384_DER[:-1],  # cut short
        ECDSA_SHA384_DER + b"\0",  # trailing bytes
    ],
)
def test_not_a_certificate(der: bytes) -> None:
    with pytest.raises(ValueError, match="DER certificate"):
        ChannelBindings.tls_server_end_point(der)


def _with_algorithm(oid_der: bytes) -> bytes:
    """A minimal Certificate shape: empty tbsCertificate, the algorithm, an empty BIT STRING."""
    algorithm = b"\x30" + bytes([len(oid_der)]) + oid_der
    body = b"\x30\x00" + algorithm + b"\x03\x01\x00"
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    "oid",
    [
        pytest.param("06092a864886f70d010104", id="md5WithRSA"),
        pytest.param("06092a864886f70d010105", id="sha1WithRSA"),
        pytest.param("06072a8648ce3d0401", id="ecdsa-with-SHA1"),
        pytest.param("06072a8648ce380403", id="dsa-with-sha1"),
        pytest.param("06092a864886f70d01010a", id="rsassa-pss-default-sha1"),
        pytest.param("06092a864886f70d01010a" + "300ba009300706052b0e03021a", id="rsassa-pss-sha1"),
    ],
)
def test_md5_and_sha1_signatures_bind_with_sha256(oid: str) -> None:
    """RFC 5929 4.1; SHA-1 certificates cannot be signed by every OpenSSL build."""
    der = _with_algorithm(bytes.fromhex(oid))
    cb = ChannelBindings.tls_server_end_point(der)
    assert cb.application_data == PREFIX + hashlib.sha256(der).digest()


def test_rsassa_pss_names_its_hash_in_the_parameters() -> None:
    sha512 = "300b0609608648016503040203"  # AlgorithmIdentifier { id-sha512 }
    params = "300f" + "a00d" + sha512  # RSASSA-PSS-params { hashAlgorithm [0] }
    der = _with_algorithm(bytes.fromhex("06092a864886f70d01010a" + params))
    cb = ChannelBindings.tls_server_end_point(der)
    assert cb.application_data == PREFIX + hashlib.sha512(der).digest()


def test_unknown_signature_algorithm_is_named() -> None:
    # signatureAlgorithm = 1.2.3.4 (an OID nobody signs with)
    body = b"\x30\x00" + b"\x30\x05\x06\x03\x2a\x03\x04" + b"\x03\x01\x00"
    der = b"\x30" + bytes([len(body)]) + body
    with pytest.raises(ValueError, match=r"1\.2\.3\.4"):
        ChannelBindings.tls_server_end_point(der)


def test_tls_server_end_point_refuses_text() -> None:
    with pytest.raises(TypeError):
        ChannelBindings.tls_server_end_point("30 82")  # type: ignore[arg-type]


# On the handshake --------------------------------------------------------------------


def test_context_refuses_other_bindings_types(sspi_fake: Any) -> None:
    with Credentials.acquire("NTLM", "outbound") as creds:
        with pytest.raises(TypeError, match="ChannelBindings"):
            SecurityContext.initiator(creds, channel_bindings=b"tls")  # type: ignore[arg-type]
        cb = ChannelBindings(application_data=b"x")
        with SecurityContext.initiator(creds, channel_bindings=cb) as ctx:
            assert ctx.channel_bindings == cb
        with SecurityContext.initiator(creds) as ctx:
            assert ctx.channel_bindings is None


IDENTITY = Identity("alice", "EXAMPLE", "Passw0rd!")
A = ChannelBindings(application_data=PREFIX + hashlib.sha256(b"certificate A").digest())
B = ChannelBindings(application_data=PREFIX + hashlib.sha256(b"certificate B").digest())


def _handshake(client: ChannelBindings | None, server: ChannelBindings | None) -> None:
    with (
        Credentials.acquire("NTLM", "outbound", IDENTITY) as cc,
        Credentials.acquire("NTLM", "inbound", IDENTITY) as sc,
        SecurityContext.initiator(cc, "HTTP/localhost", channel_bindings=client) as c,
        SecurityContext.acceptor(sc, channel_bindings=server) as s,
    ):
        token = c.step(None)
        while token is not None and not s.complete:
            token = s.step(token)
            if token is not None:
                token = c.step(token)
        assert c.complete
        assert s.complete


@pytest.mark.sspi_rs
def test_sspi_rs_accepts_equal_bindings(sspi_rs: Path) -> None:
    _handshake(A, A)


@pytest.mark.sspi_rs
def test_sspi_rs_refuses_different_bindings(sspi_rs: Path) -> None:
    with pytest.raises(BadBindingsError) as info:
        _handshake(A, B)
    assert info.value.function == "AcceptSecurityContext"
    assert info.value.symbol == "SEC_E_BAD_BINDINGS"
    assert isinstance(info.value, sspi_import.SspiError)


@pytest.mark.sspi_rs
def test_sspi_rs_does_not_require_bindings_from_a_client_that_sends_none(sspi_rs: Path) -> None:
    """Measured: sspi-rs accepts a client without bindings (Windows follows its EPA policy)."""
    _handshake(None, A)


def _pyspnego_client(bindings: bytes) -> Any:
    spnego = pytest.importorskip("spnego")
    from spnego.channel_bindings import GssChannelBindings

    return spnego.client(
        f"{IDENTITY.domain}\\{IDENTITY.user}",
        "Passw0rd!",
        hostname="localhost",
        service="HTTP",
        protocol="ntlm",
        options=spnego.NegotiateOptions.use_ntlm,
        channel_bindings=GssChannelBindings(application_data=bindings),
    )


def _against_pyspnego(client_data: bytes, server: ChannelBindings) -> SecurityContext:
    client = _pyspnego_client(client_data)
    creds = Credentials.acquire("NTLM", "inbound", IDENTITY)
    ctx = SecurityContext.acceptor(creds, channel_bindings=server)
    ctx._owns_credentials = True  # closed with the context, as loopback's are
    try:
        token = client.step()
        while token is not None and not ctx.complete:
            reply = ctx.step(token)
            token = client.step(reply) if reply is not None else None
    except BaseException:
        ctx.close()
        raise
    return ctx


@pytest.mark.sspi_rs
def test_pyspnego_client_with_equal_bindings_is_accepted(sspi_rs: Path) -> None:
    with _against_pyspnego(A.application_data, A) as ctx:
        assert ctx.complete


@pytest.mark.sspi_rs
def test_pyspnego_client_with_different_bindings_is_refused(sspi_rs: Path) -> None:
    with pytest.raises(BadBindingsError):
        _against_pyspnego(B.application_data, A)
