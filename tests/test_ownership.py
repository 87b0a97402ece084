"""One owner per handle: copies and pickles refused, honest states, no second ``__init__``."""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, SecurityContext
from sspi_import._handle import OwnedHandle
from sspi_import._tokens import Token as _Token
from sspi_import.testing import FakeSspi

ALICE = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")

COPIES: list[tuple[str, Callable[[Any], object]]] = [
    ("copy", copy.copy),
    ("deepcopy", copy.deepcopy),
    ("pickle", pickle.dumps),
    ("pickle-0", lambda obj: pickle.dumps(obj, protocol=0)),
]


def _owners() -> Iterator[tuple[OwnedHandle[Any], str]]:
    """One live owner of every kind, with the advice its refusal must give; closed after."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    exported = server.export()  # the acceptor's export carries the client's token
    imported = ImportedContext.from_exported(exported)
    token = exported._token
    assert isinstance(token, _Token)
    credentials = server.credentials
    try:
        yield client, "export()"
        yield credentials, "Acquire new credentials"
        yield imported, "export()"
        yield token, "for_process"
        server._owns_credentials = False  # the adopted context takes the handle only
        adopted = sspi_import.adopt_context(server.detach(), "NTLM")
        with adopted:
            yield adopted, "export()"
    finally:
        for item in (imported, exported, client, credentials):
            item.close()


@pytest.mark.parametrize(("how", "duplicate"), COPIES, ids=[name for name, _ in COPIES])
def test_no_owner_can_be_duplicated(
    sspi_fake: FakeSspi, how: str, duplicate: Callable[[Any], object]
) -> None:
    kinds = set()
    for owner, advice in _owners():
        with pytest.raises(TypeError, match="cannot be copied or pickled") as info:
            duplicate(owner)
        message = str(info.value)
        assert type(owner).__name__ in message
        assert advice in message
        assert "free it twice" in message
        assert not owner.closed  # the refusal took nothing away
        kinds.add(type(owner).__name__)
    assert kinds == {
        "SecurityContext",
        "Credentials",
        "ImportedContext",
        "AdoptedContext",
        "Token",
    }
    assert not sspi_fake.misuses  # one owner each: nothing was freed twice


def test_a_copied_export_is_the_same_value_and_its_token_keeps_one_owner(
    sspi_fake: FakeSspi,
) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server:
        exported = server.export()
        assert exported.token is not None
        assert copy.copy(exported) is exported
        assert copy.deepcopy(exported) is exported
        assert copy.deepcopy([exported])[0] is exported
        with pytest.raises(TypeError, match="for_process"):
            pickle.dumps(exported)  # its token is valid here only
        exported.close()
        assert exported.closed
        clone = pickle.loads(pickle.dumps(exported))  # no token left: a plain value
        assert clone.blob == exported.blob
        assert clone.token is None


def test_a_live_context_cannot_be_initialised_again(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server, client.export() as exported:
        ctx = ImportedContext.from_exported(exported)
        with ctx:
            with pytest.raises(TypeError, match="already set up"):
                ctx.__init__("NTLM", exported.blob)  # type: ignore[misc]
            assert not ctx.closed
            assert ctx.user_name  # still the context it was
        assert ctx.closed
    assert not sspi_fake.misuses


def test_a_handshake_reports_not_started_then_complete_then_closed(sspi_fake: FakeSspi) -> None:
    with sspi_import.Credentials.acquire("NTLM", "outbound", ALICE) as creds:
        ctx = SecurityContext.initiator(creds, "host/x")
        assert (ctx.started, ctx.closed, ctx.complete) == (False, False, False)
        assert repr(ctx).endswith("not started>")
        with pytest.raises(ValueError, match="has not started"):
            ctx.encrypt(b"too early")
        with pytest.raises(ValueError, match="has not started"):
            ctx.export()
        ctx.close()
        assert (ctx.started, ctx.closed) == (True, True)
        assert repr(ctx).endswith("closed>")
        with pytest.raises(ValueError, match="closed"):
            ctx.step(None)
    assert sspi_fake.calls("InitializeSecurityContextW") == 0


def test_a_consumed_context_is_closed_and_refuses_calls(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client:
        exported = server.export(ExportFlags.DELETE_OLD)
        with exported:
            assert server.closed
            with pytest.raises(ValueError, match="closed"):
                server.sizes()
            with pytest.raises(ValueError, match="closed"):
                server.export()
            server.close()  # nothing left to delete: SSPI deleted it
    assert sspi_fake.calls("DeleteSecurityContext") == 1  # the client only


@pytest.mark.parametrize("how", ["to_bytes", "pickle"])
def test_a_payloads_token_is_taken_once_while_its_first_reader_owns_it(
    sspi_fake: FakeSspi, how: str
) -> None:
    """Reading one ``for_process(os.getpid())`` payload twice would make two owners of one
    token (closed twice): the second read owns nothing, and every use of it (its token,
    an import) is refused, saying why, closing nothing."""
    client, server = sspi_import.loopback("NTLM", ALICE)
    with client, server, server.export() as exported:
        copy = exported.for_process(os.getpid())
        if how == "to_bytes":
            payload = copy.to_bytes()
            read: Callable[[], ExportedContext] = lambda: ExportedContext.from_bytes(payload)  # noqa: E731
        else:
            pickled = pickle.dumps(copy)
            read = lambda: pickle.loads(pickled)  # noqa: E731
        first = read()
        token = first.token
        assert token is not None
        closes = sspi_fake.calls("CloseHandle")
        second = read()
        with pytest.raises(ValueError, match="already owned by an ExportedContext") as info:
            second.token  # noqa: B018 - the use that is refused
        with pytest.raises(ValueError, match="already owned by an ExportedContext"):
            ImportedContext.from_exported(second)
        second.close()
        message = str(info.value)
        assert f"token ({token})" in message
        assert "taken once" in message
        assert "close it twice" in message
        assert "ask the sender for a new payload" in message
        assert sspi_fake.calls("CloseHandle") == closes  # the refusal closed nothing
        assert (first.token, first.closed) == (token, False)
        with ImportedContext.from_exported(first) as imported, imported.impersonate():
            assert sspi_fake.impersonating == "EXAMPLE\\alice"  # the first reader's token works
        first.close()
        first.close()
        assert sspi_fake.calls("CloseHandle") == closes + 1
    assert not sspi_fake.misuses
