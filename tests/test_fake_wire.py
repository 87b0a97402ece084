"""What FakeSspi puts on the wire (``testing/_wire.py``): its own tokens, which no real NTLM peer
can read, and which it refuses to mistake for real NTLM.
"""

from __future__ import annotations

import pytest

import sspi_import
from sspi_import.testing import FakeSspi


def test_its_tokens_are_not_ntlm_and_real_ntlm_is_refused(fake: FakeSspi) -> None:
    # What the testing guide, the FakeSspi docstring and examples/http_ntlm_server.py say
    # (issue 22 §3): no real client or server can talk to a FakeSspi.
    spnego = pytest.importorskip("spnego")
    outbound = sspi_import.Credentials.acquire("NTLM", "outbound")
    with outbound, sspi_import.SecurityContext.initiator(outbound, "HTTP/x") as initiator:
        first = initiator.step(None)
    assert first is not None
    assert not first.startswith(b"NTLMSSP\x00"), first[:16]
    real = spnego.client("alice", "Passw0rd!", protocol="ntlm").step()  # pure-Python NTLM
    assert real.startswith(b"NTLMSSP\x00")  # a real NEGOTIATE_MESSAGE
    inbound = sspi_import.Credentials.acquire("NTLM", "inbound")
    acceptor = sspi_import.SecurityContext.acceptor(inbound)
    with inbound, acceptor, pytest.raises(sspi_import.InvalidTokenError):
        acceptor.step(real)
