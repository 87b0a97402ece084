"""What every context can do (``context.py``): impersonation (reverted on an exception, never
after a failed impersonation, loud when the ``with`` is forgotten) and the attribute queries'
buffers, at the mocked raw boundary.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

import sspi_import
from scripted_sspi import CREDS, Provider, error, established
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import.handshake import SecurityContext
from sspi_import.testing import FakeSspi


def test_impersonate_reverts_on_exception(provider: Provider) -> None:
    provider.lib.ImpersonateSecurityContext.return_value = 0
    provider.lib.RevertSecurityContext.return_value = 0

    def fail_inside(ctx: SecurityContext) -> None:
        with ctx.impersonate():
            provider.lib.RevertSecurityContext.assert_not_called()
            raise KeyError("boom")

    with established(provider) as ctx:
        with pytest.raises(KeyError):
            fail_inside(ctx)
        provider.lib.ImpersonateSecurityContext.assert_called_once()
        provider.lib.RevertSecurityContext.assert_called_once()
        with ctx.impersonate():
            pass
        assert provider.lib.RevertSecurityContext.call_count == 2
    assert provider.creds_freed == [CREDS]  # owned credentials close with the context


def test_a_forgotten_with_is_loud(sspi_fake: FakeSspi) -> None:
    # Issue 22 §3: ctx.impersonate() without `with` did nothing, silently; neither mypy
    # nor pyright can see it. Now the Impersonation warns when it is collected unentered
    # (at once, on CPython: the dropped object is freed on that line).
    client, server = sspi_import.loopback("NTLM")
    with client, server:
        message = r"never entered.*with ctx\.impersonate\(\)"
        with pytest.warns(RuntimeWarning, match=message) as caught:
            server.impersonate()  # the mistake: no `with`
        assert len(caught) == 1
        assert caught[0].filename == __file__  # it points at the line that forgot the `with`
        assert sspi_fake.calls("ImpersonateSecurityContext") == 0  # nothing ran as the client
        with server.impersonate():  # the right way: silent, and it impersonates
            assert sspi_fake.impersonating == "EXAMPLE\\alice"
        assert sspi_fake.impersonating is None


def test_impersonate_failure_does_not_revert(provider: Provider) -> None:
    provider.lib.ImpersonateSecurityContext.side_effect = error(
        "SEC_E_NO_IMPERSONATION", "ImpersonateSecurityContext"
    )
    with established(provider) as ctx, pytest.raises(sspi_import.SspiError), ctx.impersonate():
        pytest.fail("the body must not run")
    provider.lib.RevertSecurityContext.assert_not_called()


def test_user_name_buffer_is_freed(provider: Provider) -> None:
    name = ctypes.create_string_buffer("EXAMPLE\\bob".encode("utf-16-le") + b"\0\0")

    def query(handle: Any, attribute: int, out: Any) -> int:
        assert attribute == C.SECPKG_ATTR_NAMES
        out._obj.sUserName = ctypes.addressof(name)
        provider.allocated.append(ctypes.addressof(name))
        return 0

    provider.lib.QueryContextAttributesW.side_effect = query
    with established(provider) as ctx:
        assert ctx.user_name == "EXAMPLE\\bob"
    assert ctypes.addressof(name) in provider.freed
