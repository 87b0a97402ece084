"""``examples/http_ntlm_server.py`` driven by ``requests`` + ``requests_ntlm.HttpNtlmAuth``.

Off Windows the acceptor is sspi-rs. Caution (measured in tests/test_peers_handshake.py):
its NTLM acceptor checks only the password of its *own* identity and reports whatever
user name the client claimed, so "the answer is the client's user name" proves the
plumbing, not authentication; the wrong-password test therefore uses the acceptor's
own user name with a wrong password. On Windows the example hands each established
context to a worker process, which answers (``windows_sspi``).
"""

from __future__ import annotations

import base64
import gc
import http.client
import importlib.util
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import sspi_import
from sspi_import import Credentials, SecurityContext

requests = pytest.importorskip("requests")
requests_ntlm = pytest.importorskip("requests_ntlm")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "http_ntlm_server.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("http_ntlm_server", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["http_ntlm_server"] = module  # multiprocessing's spawn pickles worker by name
    spec.loader.exec_module(module)
    return module


example = load_example()


class Running:
    """The example's server on a free port, served from a thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.server = example.NtlmServer(("127.0.0.1", 0), **kwargs)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def running(sspi_rs: Path) -> Iterator[Running]:
    running = Running(identity=example.DEMO_IDENTITY)
    try:
        yield running
    finally:
        running.stop()


def user(identity: Any) -> str:
    return f"{identity.domain}\\{identity.user}"


def ntlm(username: str, password: str) -> Any:
    return requests_ntlm.HttpNtlmAuth(username, password)


@pytest.mark.sspi_rs
def test_no_credentials_get_the_challenge(running: Running) -> None:
    response = requests.get(running.url, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "NTLM"


@pytest.mark.sspi_rs
def test_requests_ntlm_authenticates_and_gets_its_user_name(running: Running) -> None:
    identity = example.DEMO_IDENTITY
    with requests.Session() as session:
        session.auth = ntlm(user(identity), example.DEMO_IDENTITY_HINT)
        response = session.get(running.url, timeout=30)
        assert response.status_code == 200, response.text
        assert response.text == f"hello {user(identity)}\n"
        # Keep-alive: the connection is authenticated; no new handshake for the next one.
        again = session.get(running.url, timeout=30)
        assert again.status_code == 200
        assert running.server.contexts_opened == 1
        del response, again
    # The session's connection is closed: its context went with it.
    _wait_for(lambda: running.server.contexts_closed == 1)


@pytest.mark.sspi_rs
def test_one_context_per_connection(running: Running) -> None:
    identity = example.DEMO_IDENTITY
    for _ in range(3):
        with requests.Session() as session:
            response = session.get(
                running.url, auth=ntlm(user(identity), example.DEMO_IDENTITY_HINT), timeout=30
            )
            assert response.status_code == 200
            del response
    _wait_for(lambda: running.server.contexts_closed == 3)
    assert running.server.contexts_opened == 3


@pytest.mark.sspi_rs
def test_wrong_password_is_401(running: Running) -> None:
    """The acceptor's own identity with a wrong password: what sspi-rs really checks."""
    identity = example.DEMO_IDENTITY
    with requests.Session() as session:
        response = session.get(
            running.url, auth=ntlm(user(identity), "not the password"), timeout=30
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "NTLM"
    _wait_for(lambda: running.server.contexts_closed == running.server.contexts_opened == 1)


@pytest.mark.sspi_rs
def test_sspi_rs_reports_the_claimed_user_name(running: Running) -> None:
    """Not Windows behaviour: any user name with the acceptor's password is "authenticated"."""
    response = requests.get(
        running.url, auth=ntlm("EVIL\\administrator", example.DEMO_IDENTITY_HINT), timeout=30
    )
    assert response.status_code == 200
    assert response.text == "hello EVIL\\administrator\n"


@pytest.mark.sspi_rs
def test_garbage_authorization_is_refused(running: Running) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", running.server.server_address[1])
    try:
        connection.request("GET", "/", headers={"Authorization": "NTLM !!!"})
        response = connection.getresponse()
        response.read()
        assert response.status == 400
        connection.request("GET", "/", headers={"Authorization": "NTLM " + "QUJD"})  # "ABC"
        response = connection.getresponse()
        response.read()
        assert response.status == 401
    finally:
        connection.close()


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Wait for the server's handler threads to see the connections closed.

    A requests ``Response`` keeps its connection checked out of the pool until it is
    collected, so the sockets close only once nothing refers to them: collect first.
    """
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        gc.collect()
        if condition():
            return
        event.wait(0.05)
    assert condition()


# A client on sspi_import itself (Windows: the logged-on user) ------------------------


def sspi_import_get(url_port: int, credentials: Credentials, target: str) -> tuple[int, str]:
    """GET / with the NTLM flow on one connection, as an sspi_import initiator."""
    connection = http.client.HTTPConnection("127.0.0.1", url_port, timeout=60)
    try:
        with SecurityContext.initiator(credentials, target) as context:
            token = context.step(None)
            while True:
                assert token is not None
                header = "NTLM " + base64.b64encode(token).decode()
                connection.request("GET", "/", headers={"Authorization": header})
                response = connection.getresponse()
                body = response.read().decode()
                challenge = response.getheader("WWW-Authenticate", "")
                if response.status != 401 or context.complete or challenge == "NTLM":
                    return response.status, body
                token = context.step(base64.b64decode(challenge.split(" ", 1)[1]))
    finally:
        connection.close()


@pytest.mark.sspi_rs
def test_sspi_import_client(running: Running) -> None:
    with Credentials.acquire("NTLM", "outbound", example.DEMO_IDENTITY) as creds:
        status, body = sspi_import_get(running.server.server_address[1], creds, "HTTP/localhost")
    assert status == 200
    assert body == f"hello {user(example.DEMO_IDENTITY)}\n"


@pytest.mark.windows_sspi
def test_windows_worker_process_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The spawned worker unpickles http_ntlm_server.worker by name: give it the path.
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    running = Running(identity=None, handoff=True)
    try:
        with Credentials.acquire("NTLM", "outbound") as creds:
            target = f"HTTP/{socket.gethostname()}"
            status, body = sspi_import_get(running.server.server_address[1], creds, target)
        assert status == 200, body
        worker_pid = running.server.handoff.process.pid
        assert body.endswith(f", from worker process {worker_pid}\n")
        assert body.startswith("hello ")
        assert "\\" in body  # DOMAIN\user of the logged-on user
        _wait_for(lambda: running.server.contexts_closed == running.server.contexts_opened == 1)
    finally:
        running.stop()
    assert running.server.handoff.process.exitcode == 0


# --handoff on a provider without export (issue 22 §3) ---------------------------------


@pytest.mark.sspi_rs
def test_handoff_without_export_is_refused_at_start(sspi_rs: Path) -> None:
    import multiprocessing

    with pytest.raises(example.HandoffUnavailableError) as raised:
        example.NtlmServer(("127.0.0.1", 0), example.DEMO_IDENTITY, handoff=True)
    message = str(raised.value)
    assert "exports and imports contexts" in message
    assert "ExportSecurityContext with SEC_E_UNSUPPORTED_FUNCTION" in message
    assert "Run without --handoff" in message
    assert multiprocessing.active_children() == []  # no worker was started


@pytest.mark.sspi_rs
def test_the_command_line_refuses_handoff_without_export(sspi_rs_path: Path) -> None:
    # The whole program, as a user starts it: it must exit at once, not serve and then
    # drop every authenticated connection (what the client saw: RemoteDisconnected).
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--handoff", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "SEC_E_UNSUPPORTED_FUNCTION" in done.stderr
    assert "serving on" not in done.stdout


def test_handoff_is_tried_once_where_export_works(sspi_fake: Any) -> None:
    example.check_handoff(None)  # FakeSspi exports and imports: nothing raised, nothing left


def test_help_says_the_simulated_provider_cannot_serve_real_clients() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, check=True
    )
    text = " ".join(done.stdout.split())
    assert "its tokens are not NTLM messages, so no real client" in text
    assert "refused at start where the provider cannot export" in text


def test_example_states_the_sspi_rs_caution() -> None:
    doc = example.__doc__ or ""
    assert "checks only the password of its *own*" in doc
    assert "whatever\nuser name the client claimed" in doc


def test_public_names_are_used_as_documented() -> None:
    assert example.Credentials is sspi_import.Credentials


# Over TLS, with requests-ntlm's channel bindings (RFC 5929 tls-server-end-point) ------


@pytest.fixture
def tls_certificate(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem, DER)."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA384())  # ecdsa-with-SHA384: the binding hash is SHA-384
    )
    cert_pem = tmp_path / "cert.pem"
    key_pem = tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


def _tls_running(
    certificate: tuple[Path, Path, bytes], bindings: sspi_import.ChannelBindings
) -> Running:
    cert_pem, key_pem, _ = certificate
    running = Running(identity=example.DEMO_IDENTITY, channel_bindings=bindings)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    running.server.socket = context.wrap_socket(running.server.socket, server_side=True)
    running.url = running.url.replace("http://", "https://")
    return running


@pytest.mark.sspi_rs
def test_requests_ntlm_over_tls_with_channel_bindings(
    sspi_rs: Path, tls_certificate: tuple[Path, Path, bytes]
) -> None:
    der = tls_certificate[2]
    running = _tls_running(tls_certificate, sspi_import.ChannelBindings.tls_server_end_point(der))
    try:
        auth = ntlm(user(example.DEMO_IDENTITY), example.DEMO_IDENTITY_HINT)
        response = requests.get(running.url, auth=auth, verify=tls_certificate[0], timeout=30)
        assert response.status_code == 200, response.text
        assert response.text == f"hello {user(example.DEMO_IDENTITY)}\n"
        del response
    finally:
        running.stop()


@pytest.mark.sspi_rs
def test_requests_ntlm_over_tls_with_other_bindings_is_refused(
    sspi_rs: Path, tls_certificate: tuple[Path, Path, bytes]
) -> None:
    """A server that binds to another certificate (a relay): SEC_E_BAD_BINDINGS, 401."""
    real = sspi_import.ChannelBindings.tls_server_end_point(tls_certificate[2]).application_data
    other = sspi_import.ChannelBindings(application_data=real[:-1] + bytes([real[-1] ^ 1]))
    running = _tls_running(tls_certificate, other)
    try:
        auth = ntlm(user(example.DEMO_IDENTITY), example.DEMO_IDENTITY_HINT)
        response = requests.get(running.url, auth=auth, verify=tls_certificate[0], timeout=30)
        assert response.status_code == 401
        assert response.text == "authentication failed: SEC_E_BAD_BINDINGS\n"
        del response
    finally:
        running.stop()
