"""``Credentials.set_kdc_proxy``: the KDC (sspi-rs) or KDC proxy (Windows) per credentials.

Issue 21, item 2.4. The block is held against sspilib's layout byte for byte on the
simulated provider (which records what it was given, and checks it as the header
describes it); bad input is refused before any call; on sspi-rs, the URL given is where
the AS-REQ goes (a listener on 127.0.0.1 sees it, with krb5.conf naming a closed port).
A whole Kerberos login through it is in the Kerberos lane (test_kerberos_library.py);
what Windows answers, in ``test_windows_*`` below.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sspi_import
from kdc import closed_port, unreachable_krb5_conf
from sspi_import import Credentials, Identity, SecurityContext
from sspi_import.testing import FakeSspi

BOB = Identity("bob", "EXAMPLE.TEST", "Krb-Passw0rd")


class RecordingFake(FakeSspi):
    """A ``FakeSspi`` that also keeps the bytes of each ``SetCredentialsAttributesW`` block."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, bytes]] = []
        super().__init__()

    def _SetCredentialsAttributesW(  # noqa: N802 - C name
        self, ph: Any, attribute: int, p_buffer: int | None, size: int
    ) -> int:
        self.blocks.append((attribute, ctypes.string_at(p_buffer, size) if p_buffer else b""))
        return super()._SetCredentialsAttributesW(ph, attribute, p_buffer, size)


@pytest.fixture
def recording() -> Iterator[RecordingFake]:
    fake = RecordingFake()
    with fake:
        yield fake
        fake.assert_no_leaks()


def sspilib_block(server: str, flags: int) -> bytes:
    """What sspilib's SecPkgCredKdcProxySettings passes: header, then the UTF-16 text."""
    text = server.encode("utf-16-le")
    header = (1).to_bytes(4, "little") + flags.to_bytes(4, "little")
    header += (16).to_bytes(2, "little") + len(text).to_bytes(2, "little") + bytes(4)
    return header + text


@pytest.mark.parametrize("package", ["Kerberos", "Negotiate"])
@pytest.mark.parametrize(
    ("server", "force"),
    [
        ("kdcproxy.example.test:443:KdcProxy", False),
        ("tcp://127.0.0.1:88", True),
        ("kdc.\U0001f4a0.test", False),  # a surrogate pair: two UTF-16 units
    ],
)
def test_the_block_is_laid_out_as_sspilib_lays_it_out(
    recording: RecordingFake, package: str, server: str, force: bool
) -> None:
    with Credentials.acquire(package, "outbound", BOB) as creds:
        creds.set_kdc_proxy(server, force_proxy=force)
    attribute, block = recording.blocks[-1]
    assert attribute == 3  # SECPKG_CRED_ATTR_KDC_PROXY_SETTINGS
    assert block == sspilib_block(server, int(force))
    assert recording.kdc_proxy == (server, int(force))


def test_the_fake_records_it_on_the_credentials(sspi_fake: FakeSspi) -> None:
    assert sspi_fake.kdc_proxy is None
    with Credentials.acquire("Kerberos", "outbound", BOB) as creds:
        creds.set_kdc_proxy("kdcproxy.example.test")
        assert "(KDC proxy 'kdcproxy.example.test')" in " ".join(sspi_fake.outstanding().details)
        creds.set_kdc_proxy("other.example.test", force_proxy=True)  # the latest counts
    assert sspi_fake.kdc_proxy == ("other.example.test", 1)
    assert sspi_fake.calls("SetCredentialsAttributesW") == 2


@pytest.mark.parametrize(
    ("server", "force", "error", "match"),
    [
        (None, False, TypeError, "must be a str"),
        (b"kdc", False, TypeError, "must be a str"),
        ("", False, ValueError, "is empty"),
        ("kdc\0evil", False, ValueError, "NUL"),
        ("kdc\ud800", False, ValueError, "surrogate"),
        ("k" * 32768, False, ValueError, "at most 32767"),
        ("kdc", 1, TypeError, "force_proxy must be True or False"),
        ("kdc", "yes", TypeError, "force_proxy must be True or False"),
    ],
)
def test_bad_input_is_refused_before_any_call(
    sspi_fake: FakeSspi, server: object, force: object, error: type[Exception], match: str
) -> None:
    with (
        Credentials.acquire("Kerberos", "outbound", BOB) as creds,
        pytest.raises(error, match=match),
    ):
        creds.set_kdc_proxy(server, force_proxy=force)  # type: ignore[arg-type]
    assert sspi_fake.calls("SetCredentialsAttributesW") == 0


def test_the_longest_server_fits(recording: RecordingFake) -> None:
    with Credentials.acquire("Kerberos", "outbound", BOB) as creds:
        creds.set_kdc_proxy("k" * 32767)
    assert len(recording.blocks[-1][1]) == 16 + 65534


def test_only_kerberos_and_negotiate_credentials_take_it(sspi_fake: FakeSspi) -> None:
    with (
        Credentials.acquire("NTLM", "outbound", BOB) as creds,
        pytest.raises(ValueError, match="Kerberos and Negotiate credentials, not 'NTLM'"),
    ):
        creds.set_kdc_proxy("kdcproxy.example.test")
    assert sspi_fake.calls("SetCredentialsAttributesW") == 0


def test_closed_credentials_are_refused(sspi_fake: FakeSspi) -> None:
    creds = Credentials.acquire("Kerberos", "outbound", BOB)
    creds.close()
    with pytest.raises(ValueError, match="closed"):
        creds.set_kdc_proxy("kdcproxy.example.test")
    assert sspi_fake.calls("SetCredentialsAttributesW") == 0


def test_a_refusal_is_the_typed_error_with_advice(sspi_fake: FakeSspi) -> None:
    sspi_fake.fail("SetCredentialsAttributesW", "SEC_E_UNSUPPORTED_FUNCTION")
    with (
        Credentials.acquire("Negotiate", "outbound", BOB) as creds,
        pytest.raises(sspi_import.UnsupportedFunctionError) as info,
    ):
        creds.set_kdc_proxy("kdcproxy.example.test")
    assert info.value.function == "SetCredentialsAttributesW"
    assert "KDC proxy" in str(info.value)  # this call's advice, not export's
    assert "ExportSecurityContext" not in str(info.value)


# sspi-rs: where the AS-REQ goes ------------------------------------------------------


class Listener:
    """A TCP listener on 127.0.0.1 that records what the first client sends, then hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.port: int = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.sock.accept()
        except OSError:  # closed without a client
            return
        with connection:
            connection.settimeout(10)
            with contextlib.suppress(OSError):  # reset by the client: nothing more to read
                self.received = connection.recv(4096)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=10)


@pytest.fixture
def krb5_conf_with_no_kdc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sspi_rs: Path
) -> Iterator[None]:
    """sspi-rs installed, with a krb5.conf whose KDC is a port of 127.0.0.1 that refuses."""
    with closed_port() as port:
        conf = unreachable_krb5_conf(tmp_path / "krb5.conf", port)
        monkeypatch.setenv("KRB5_CONFIG", str(conf))
        for name in [n for n in os.environ if n.startswith("SSPI_KDC_URL")]:
            monkeypatch.delenv(name)
        yield


def first_step(creds: Credentials) -> BaseException:
    with (
        SecurityContext.initiator(creds, "HTTP/localhost") as context,
        pytest.raises(sspi_import.SspiError) as info,
    ):
        context.step(None)
    return info.value


@pytest.mark.parametrize(
    ("package", "packages"), [("Kerberos", None), ("Negotiate", ["kerberos", "!ntlm"])]
)
def test_on_sspi_rs_the_as_req_goes_to_the_url_given(
    krb5_conf_with_no_kdc: None, package: str, packages: list[str] | None
) -> None:
    listener = Listener()
    try:
        with Credentials.acquire(package, "outbound", BOB, packages=packages) as creds:
            creds.set_kdc_proxy(f"tcp://127.0.0.1:{listener.port}")
            first_step(creds)  # the listener hangs up: no reply, so the step fails
    finally:
        listener.close()
    # Kerberos over TCP: a 4-byte length, then the AS-REQ ([APPLICATION 10], tag 0x6a).
    assert len(listener.received) > 4
    assert int.from_bytes(listener.received[:4], "big") > 0
    assert listener.received[4] == 0x6A


def test_on_sspi_rs_without_it_krb5_conf_is_asked(krb5_conf_with_no_kdc: None) -> None:
    listener = Listener()  # the control: nothing points at the listener
    try:
        with Credentials.acquire("Kerberos", "outbound", BOB) as creds:
            error = first_step(creds)
    finally:
        listener.close()
    assert type(error) is sspi_import.NoAuthenticatingAuthorityError
    assert listener.received == b""


# Windows (only its lane answers) ------------------------------------------------------


@pytest.mark.windows_sspi
@pytest.mark.parametrize("package", ["Kerberos", "Negotiate"])
@pytest.mark.parametrize("force", [False, True])
def test_windows_takes_a_kdc_proxy(package: str, force: bool) -> None:
    # sspilib's own Windows tests set one on the logged-on user's Kerberos credentials.
    with Credentials.acquire(package, "outbound") as creds:
        creds.set_kdc_proxy("kdcproxy.example.test:443:KdcProxy", force_proxy=force)
        assert not creds.closed
