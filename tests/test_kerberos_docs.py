"""The Kerberos recipe of docs/guides/real-peers.md runs against the lane's KDC.

The block is a fragment for tests/test_docs.py (it needs a KDC, a password and a server);
here it runs as written, with ``password`` and ``send_to_server`` (MIT GSSAPI's acceptor
with the service keytab) in its namespace, and the server opens what it wrapped.
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


def recipe() -> Snippet:
    found = [s for s in snippets() if s.page == PAGE and s.first_line.startswith(FIRST_LINE)]
    assert len(found) == 1, f"{PAGE} should have one block starting {FIRST_LINE!r}"
    return found[0]


def test_the_kerberos_recipe_runs(kerberos: HeimdalRealm) -> None:
    snippet = recipe()
    code = compile(snippet.code, f"{snippet.page}:{snippet.line}", "exec")
    for attempt in range(1, TRIES + 1):
        server = gss_acceptor()
        namespace: dict[str, Any] = {
            "__name__": "__snippet__",
            "password": PASSWORD,
            "send_to_server": server.step,
        }
        try:
            exec(code, namespace)  # the documentation's own code
        except sspi_import.InvalidTokenError as exc:
            # sspi-rs's sequence-number fault (tests/kerberos.py): about 1 in 128
            if "InitializeSecurityContextW" not in str(exc) or attempt == TRIES:
                raise
            continue
        break
    assert server.complete
    assert str(server.initiator_name) == PRINCIPAL
    assert server.unwrap(namespace["sealed"]).message == b"hello"
