"""``client_token()``: the client's access token as an owned ``AccessToken`` (issue 21, 2.5).

On the simulated provider, whose tokens share one ledger with the export tokens (so a
token closed twice, or never, shows up as misuse or as a leak), and on sspi-rs, which
exports ``QuerySecurityContextToken`` but has no Windows access tokens. What Windows
answers is asserted in test_handshake.py (``windows_sspi``).
"""

from __future__ import annotations

import copy
import ctypes
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

import sspi_import
from sspi_import import AccessToken, Identity, ImportedContext, loopback
from sspi_import.testing import FakeSspi
from wrapped import at_once

ALICE = Identity("alice", "EXAMPLE", "p4ssw0rd")


@pytest.fixture
def pair(sspi_fake: FakeSspi) -> Iterator[tuple[sspi_import.SecurityContext, ...]]:
    client, server = loopback("NTLM", ALICE)
    yield client, server
    client.close()
    server.close()


def test_a_server_context_hands_out_its_clients_token(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    with server.client_token() as token:
        assert isinstance(token, AccessToken)
        assert not token.closed
        assert sspi_fake.calls("QuerySecurityContextToken") == 1
        details = sspi_fake.outstanding().details
        assert f"token {token.value:#x} of 'EXAMPLE\\\\alice'" in details
        assert repr(token) == "<AccessToken package='NTLM' open>"
    assert token.closed
    assert repr(token) == "<AccessToken package='NTLM' closed>"
    assert sspi_fake.calls("CloseHandle") == 1
    assert sspi_fake.outstanding().tokens == 0


def test_each_call_is_a_new_handle_and_outlives_the_context(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    first = server.client_token()
    second = server.client_token()
    assert first.value != second.value
    server.close()  # the tokens stay open: they are handles of their own
    assert sspi_fake.outstanding().tokens == 2
    first.close()
    second.close()
    first.close()  # idempotent
    assert sspi_fake.calls("CloseHandle") == 2


def test_the_client_side_has_no_client_token(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    client, _server = pair
    with pytest.raises(sspi_import.SspiError) as info:
        client.client_token()
    assert info.value.symbol == "SEC_E_NO_IMPERSONATION"
    assert info.value.function == "QuerySecurityContextToken"
    assert "server-side context" in str(info.value)  # the advice of this call
    assert sspi_fake.outstanding().tokens == 0


def test_an_imported_context_has_a_token_only_if_its_export_token_came_along(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    with server.export() as exported:
        with ImportedContext.from_exported(exported) as imported, imported.client_token() as t:
            assert t.value not in (None, exported.token)
        with (
            ImportedContext("NTLM", exported.blob) as bare,
            pytest.raises(sspi_import.SspiError, match="NO_IMPERSONATION"),
        ):
            bare.client_token()


def test_a_closed_or_unfinished_context_is_refused(sspi_fake: FakeSspi) -> None:
    client, server = loopback("NTLM", ALICE)
    server.close()
    client.close()
    with pytest.raises(ValueError, match="closed"):
        server.client_token()
    with sspi_import.Credentials.acquire("NTLM", "outbound", ALICE) as creds:
        context = sspi_import.SecurityContext.initiator(creds, "host/x")
        with pytest.raises(ValueError, match="has not started"):
            context.client_token()
    assert sspi_fake.calls("QuerySecurityContextToken") == 0


def test_ownership_cannot_be_duplicated(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    with server.client_token() as token:
        for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot be copied or pickled") as info:
                duplicate(token)
            assert "export_context" in str(info.value)  # how to move it instead
    with pytest.raises(TypeError, match="client_token"):
        AccessToken()


def test_detach_hands_the_handle_over_once(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    token = server.client_token()
    value = token.value
    assert token.detach() == value
    assert token.closed
    with pytest.raises(ValueError, match="closed"):
        token.value  # noqa: B018
    with pytest.raises(ValueError, match="no handle to detach"):
        token.detach()
    token.close()  # nothing left: no CloseHandle
    assert sspi_fake.calls("CloseHandle") == 0
    assert sspi_fake.outstanding().tokens == 1
    sspi_import.library.call(sspi_import.library.api(), "CloseHandle", value)  # ours now


def test_a_forgotten_token_is_closed_by_its_finalizer(sspi_fake: FakeSspi) -> None:
    client, server = loopback("NTLM", ALICE)
    with client, server:
        token = server.client_token()
        with pytest.warns(ResourceWarning, match="unclosed <AccessToken package='NTLM' open>"):
            del token  # the last reference: finalized at once
    assert sspi_fake.outstanding().tokens == 0


def test_closing_from_many_threads_at_once_closes_once(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...]
) -> None:
    _client, server = pair
    token = server.client_token()
    at_once(token.close)
    assert sspi_fake.calls("CloseHandle") == 1
    assert not sspi_fake.misuses


@pytest.mark.parametrize("status", ["SEC_E_INVALID_HANDLE", "SEC_E_INSUFFICIENT_MEMORY"])
def test_a_failed_query_leaves_nothing_owned(
    sspi_fake: FakeSspi, pair: tuple[sspi_import.SecurityContext, ...], status: str
) -> None:
    _client, server = pair
    sspi_fake.fail("QuerySecurityContextToken", status)
    with pytest.raises(sspi_import.SspiError) as info:
        server.client_token()
    assert info.value.symbol == status
    assert sspi_fake.calls("CloseHandle") == 0
    with server.client_token():  # the context is unharmed
        pass


def test_a_provider_without_tokens_says_so(sspi_rs: Path) -> None:
    client, server = loopback("NTLM", Identity("alice", "EXAMPLE", "p4ssw0rd"))
    with client, server:
        for side in (client, server):
            with pytest.raises(sspi_import.UnsupportedFunctionError) as info:
                side.client_token()
            assert info.value.function == "QuerySecurityContextToken"
            assert "no Windows access tokens" in str(info.value)  # this call's advice


def test_the_prototype_matches_the_header() -> None:
    from sspi_import._raw.functions import PROTOTYPES

    proto = PROTOTYPES["QuerySecurityContextToken"]
    # SECURITY_STATUS QuerySecurityContextToken(PCtxtHandle phContext, HANDLE *Token)
    assert proto.functype._restype_ is ctypes.c_int32
    assert proto.functype._argtypes_[1]._type_ is ctypes.c_void_p
    assert proto.result == "status"
