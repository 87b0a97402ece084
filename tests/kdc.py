"""A Heimdal KDC on 127.0.0.1 for the Kerberos lane: realm, principals, keytab, process.

``HeimdalRealm.create(directory)`` writes a private ``krb5.conf`` (used by the KDC, by
MIT GSSAPI on the acceptor side and by sspi-rs on the initiator side, through
``KRB5_CONFIG``), creates the database with ``kadmin -l`` (no kadmind), the principals
and a keytab for the service, and starts ``kdc`` on a free port of 127.0.0.1.
``stop()`` ends it by its pid. Everything lives in ``directory``.

Why Heimdal, and the two settings sspi-rs needs (docs/guides/real-peers.md, Kerberos):
MIT's KDC wraps the AS-REP's encrypted part with the EncTGSRepPart tag, which sspi-rs
refuses; Heimdal works when the user must pre-authenticate (``require-preauth``) and
its keys have an empty salt (sspi-rs reads the salt only from PA-ETYPE-INFO2; Heimdal
sends PA-PW-SALT), hence ``default_keys = aes256-cts-hmac-sha1-96:pw-salt:``.

Why not ``k5test`` (PyPI, from python-gssapi; version 0.10.4 read): its ``HeimdalRealm``
would need most of its settings replaced here. It picks MIT or Heimdal from
``krb5-config`` (MIT's here, since python-gssapi builds against MIT), looks for
``/usr/libexec/kdc`` (Debian has ``/usr/lib/heimdal-servers/kdc``), uses ports from a
fixed base (61000 unless given), waits for the KDC's log line with no time limit, and
its Heimdal ``create_kdb`` passes ``--key-file=...stash--random-password`` (two strings
joined for want of a comma). Neither of sspi-rs's two settings is made. The few lines
below do what the lane needs, on a free port, and fail with the KDC's log when it does
not start.

Tools missing raise ``KdcUnavailableError`` with what to install (``bash .ci/kerberos``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

__all__ = [
    "PASSWORD",
    "REALM",
    "SERVICE",
    "SERVICE_PASSWORD",
    "USER",
    "HeimdalRealm",
    "KdcUnavailableError",
    "closed_port",
    "heimdal_tools",
    "unreachable_krb5_conf",
]

REALM: Final = "EXAMPLE.TEST"
USER: Final = "bob"
PASSWORD: Final = "Krb-Passw0rd"
SERVICE: Final = "HTTP/localhost"
"""The acceptor's principal (in the keytab); the initiator's target name."""
SERVICE_PASSWORD: Final = "Svc-Passw0rd"

# Debian's paths first (heimdal-kdc, heimdal-clients), then the name on PATH (never a
# bare "kadmin": it may be MIT's).
_TOOLS: Final = {
    "kdc": (("/usr/lib/heimdal-servers/kdc", "/usr/libexec/kdc"), "kdc"),
    "kadmin": (("/usr/bin/kadmin.heimdal",), "kadmin.heimdal"),
    "kstash": (("/usr/sbin/kstash",), "kstash"),
}
# If the test process dies without stopping the KDC (SIGKILL), the KDC gets SIGTERM too:
# setpriv (util-linux) sets the parent-death signal, then execs the KDC (same pid).
_SETPRIV: Final = shutil.which("setpriv")
_DIE_WITH_PARENT: Final = (_SETPRIV, "--pdeathsig", "TERM") if _SETPRIV else ()
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 5.0


class KdcUnavailableError(Exception):
    """The Heimdal tools are missing or the KDC would not start; the message says why."""


def heimdal_tools() -> dict[str, str]:
    """The paths of ``kdc``, ``kadmin`` and ``kstash``; ``KdcUnavailableError`` names what lacks."""
    found: dict[str, str] = {}
    for tool, (candidates, name) in _TOOLS.items():
        path = next((c for c in candidates if os.access(c, os.X_OK)), None) or shutil.which(name)
        if path is None:
            raise KdcUnavailableError(
                f"Heimdal's {tool} is not installed (looked in {', '.join(candidates)}): "
                "`bash .ci/kerberos` installs heimdal-kdc and heimdal-clients (as root)"
            )
        found[tool] = path
    return found


def _free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (the KDC listens on both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise KdcUnavailableError("found no port free for both TCP and UDP on 127.0.0.1")


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A TCP port of 127.0.0.1 that refuses connections: bound while open, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def unreachable_krb5_conf(path: Path, port: int) -> Path:
    """Write a krb5.conf for ``REALM`` whose only KDC is ``127.0.0.1:port`` (a
    ``closed_port()``: refuses connections), no realm running; return ``path``."""
    path.write_text(
        f"[libdefaults]\n    default_realm = {REALM}\n    dns_lookup_kdc = false\n"
        f"[realms]\n    {REALM} = {{\n        kdc = 127.0.0.1:{port}\n    }}\n",
        encoding="utf-8",
    )
    return path


def krb5_conf(directory: Path, port: int) -> str:
    """The realm's krb5.conf: client, KDC and kadmin settings in one file."""
    return f"""\
[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    forwardable = true
    default_keytab_name = FILE:{directory}/keytab

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}

[kdc]
    database = {{
        dbname = {directory}/heimdal
        mkey_file = {directory}/m-key
        acl_file = {directory}/kadmind.acl
        log_file = {directory}/db.log
    }}
    addresses = 127.0.0.1
    ports = {port}
    num-kdc-processes = 1
    # sspi-rs stops when the AS-REP comes without pre-authentication
    require-preauth = true

[kadmin]
    # an empty salt: sspi-rs takes the salt only from PA-ETYPE-INFO2
    default_keys = aes256-cts-hmac-sha1-96:pw-salt:

[logging]
    kdc = FILE:{directory}/kdc.log
    default = FILE:{directory}/heimdal.log
"""


class HeimdalRealm:
    """A Heimdal realm in one directory, its KDC on ``127.0.0.1:port`` while started.

    ``env`` is what a process needs to use it: ``KRB5_CONFIG`` (KDC address and realm,
    for sspi-rs and MIT), ``KRB5_KTNAME`` (the service keytab, for MIT's acceptor),
    and a private credential cache and replay cache directory.
    """

    def __init__(self, directory: Path, tools: dict[str, str], port: int) -> None:
        self.directory = directory
        self.tools = tools
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        """The realm's krb5.conf."""
        return self.directory / "krb5.conf"

    @property
    def keytab(self) -> Path:
        """The keytab holding ``SERVICE``'s keys."""
        return self.directory / "keytab"

    @property
    def log(self) -> Path:
        """The KDC's log (one line per request, with the reason of a refusal)."""
        return self.directory / "kdc.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point Kerberos at this realm, and only at it."""
        return {
            "KRB5_CONFIG": str(self.conf),
            "KRB5_KTNAME": f"FILE:{self.keytab}",
            "KRB5CCNAME": f"FILE:{self.directory}/ccache",
            "KRB5RCACHEDIR": str(self.directory),
        }

    @classmethod
    def create(cls, directory: Path) -> HeimdalRealm:
        """Write the configuration, create the database and principals; start the KDC."""
        tools = heimdal_tools()
        directory.mkdir(parents=True, exist_ok=True)
        realm = cls(directory, tools, _free_port())
        realm.conf.write_text(krb5_conf(directory, realm.port), encoding="utf-8")
        (directory / "kadmind.acl").write_text("", encoding="utf-8")
        realm._run(tools["kstash"], "--random-key", f"--key-file={directory}/m-key")
        realm.kadmin("init", "--realm-max-ticket-life=1d", "--realm-max-renewable-life=1w", REALM)
        realm.kadmin("add", "--use-defaults", f"--password={PASSWORD}", USER)
        realm.kadmin("add", "--use-defaults", f"--password={SERVICE_PASSWORD}", SERVICE)
        realm.kadmin("modify", "--attributes=+ok-as-delegate", SERVICE)
        realm.kadmin("ext_keytab", f"--keytab={realm.keytab}", SERVICE)
        realm.start()
        return realm

    def kadmin(self, *args: str) -> str:
        """Run ``kadmin -l`` (local, no kadmind) with this realm's configuration."""
        return self._run(self.tools["kadmin"], "-l", f"--config-file={self.conf}", *args)

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            args,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode:
            raise KdcUnavailableError(
                f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result.stdout

    def start(self) -> None:
        """Start ``kdc`` in the foreground as a child; return once it answers on TCP."""
        if self.process is not None:
            raise RuntimeError("the KDC is already running")
        self.log.write_text("", encoding="utf-8")
        output = (self.directory / "kdc.out").open("wb")
        with output:
            self.process = subprocess.Popen(
                [*_DIE_WITH_PARENT, self.tools["kdc"], f"--config-file={self.conf}"],
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is pytest's, not the KDC's
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                raise KdcUnavailableError(f"the KDC exited at start:\n{self._logs()}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        self.stop()
        raise KdcUnavailableError(
            f"the KDC did not answer within {_START_TIMEOUT} s:\n{self._logs()}"
        )

    def stop(self) -> None:
        """End the KDC by its pid (SIGTERM; it ends its worker); idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL to the same pid
            process.wait()

    def _logs(self) -> str:
        parts = []
        for name in ("kdc.out", "kdc.log"):
            path = self.directory / name
            if path.is_file():
                parts.append(f"--- {name}\n{path.read_text(encoding='utf-8', errors='replace')}")
        return "\n".join(parts)

    def __repr__(self) -> str:
        state = "running" if self.process is not None else "stopped"
        return f"<HeimdalRealm {REALM} 127.0.0.1:{self.port} {state} in {self.directory}>"
