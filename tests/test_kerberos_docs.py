"""The Kerberos recipes of docs/guides/real-peers.md run against the lane's KDC.

The blocks are fragments for tests/test_docs.py (they need a KDC, a password and a
server); here they run as written, with ``password`` and ``send_to_server`` (MIT GSSAPI's
acceptor with the service keytab) in their namespace: the client recipe (the server
opens what it wrapped), and the KDC per credentials (``kdc_url``, with krb5.conf naming a
port where no KDC listens).
"""

from __future__ import annotations

from typing import Any

import pytest

import sspi_import
from kdc import PASSWORD, HeimdalRealm
from kerberos import PRINCIPAL, TRIES, gss_acceptor
from test_docs import Snippet, snippets

pytestmark = [pytest.mark.kerberos, pytest.mark.sspi_rs]

PAGE = "docs/guides/real-peers.md"
FIRST_LINE = "# fragment: needs a KDC for EXAMPLE.TEST"
KDC_URL_LINE = "# fragment: needs a KDC at `kdc_url`"


def recipe(first_line: str = FIRST_LINE) -> Snippet:
    found = [s for s in snippets() if s.page == PAGE and s.first_line.startswith(first_line)]
    assert len(found) == 1, f"{PAGE} should have one block starting {first_line!r}"
    return found[0]


def run(snippet: Snippet, **given: Any) -> tuple[Any, dict[str, Any]]:
    """Run the block against a new MIT acceptor; again on sspi-rs's sequence-number fault."""
    code = compile(snippet.code, f"{snippet.page}:{snippet.line}", "exec")
    for attempt in range(1, TRIES + 1):
        server = gss_acceptor()
        namespace: dict[str, Any] = {
            "__name__": "__snippet__",
            "password": PASSWORD,
            "send_to_server": server.step,
            **given,
        }
        try:
            exec(code, namespace)  # the documentation's own code
        except sspi_import.InvalidTokenError as exc:
            # sspi-rs's sequence-number fault (tests/kerberos.py): about 1 in 128
            if "InitializeSecurityContextW" not in str(exc) or attempt == TRIES:
                raise
            continue
        return server, namespace
    raise AssertionError("unreachable")  # pragma: no cover


def test_the_kerberos_recipe_runs(kerberos: HeimdalRealm) -> None:
    server, namespace = run(recipe())
    assert server.complete
    assert str(server.initiator_name) == PRINCIPAL
    assert server.unwrap(namespace["sealed"]).message == b"hello"


def test_the_kdc_per_credentials_recipe_runs(kerberos: HeimdalRealm, no_kdc: int) -> None:
    # No KDC where krb5.conf says: only kdc_url leads to it.
    server, _ = run(recipe(KDC_URL_LINE), kdc_url=f"tcp://127.0.0.1:{kerberos.port}")
    assert server.complete
    assert str(server.initiator_name) == PRINCIPAL
