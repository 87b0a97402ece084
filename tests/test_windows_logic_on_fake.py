"""The Windows hand-off tests' own logic, run here against the simulated provider.

``test_windows_handoff.py`` runs only on the Windows CI lane. Running the same test bodies
against ``FakeSspi`` proves, on every lane, that the tests themselves are sound (they use
the API correctly and can pass), so a Windows failure points at Windows behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import sspi_import
import sspi_import.handoff
import test_windows_handoff as windows
from sspi_import.testing import FakeSspi

Test = Callable[[tuple[sspi_import.SecurityContext, sspi_import.SecurityContext]], None]

IN_PROCESS: list[Test] = [
    windows.test_delete_old_invalidates_the_source_handle,
    windows.test_plain_export_keeps_the_source_usable,
    windows.test_reset_new_restarts_the_sequence,
    windows.test_corrupted_blob_is_refused,
    windows.test_wrong_package_name_is_refused,
    windows.test_closed_context_is_refused_before_secur32,
]


@pytest.mark.parametrize("test", IN_PROCESS, ids=[t.__name__ for t in IN_PROCESS])
@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_windows_test_logic_holds_on_the_fake(
    sspi_fake: FakeSspi, test: Test, package: str
) -> None:
    client, server = sspi_import.loopback(package)
    with client, server:
        test((client, server))
    if test is windows.test_delete_old_invalidates_the_source_handle:
        # That test exports a deleted handle on purpose: the one misuse the fake must see.
        assert [m.kind for m in sspi_fake.misuses] == ["deleted context"]
        sspi_fake.misuses.clear()


def test_negotiate_default_name_logic_holds_on_the_fake(sspi_fake: FakeSspi) -> None:
    client, server = sspi_import.loopback("Negotiate")
    with client, server:
        windows.test_a_negotiate_export_imports_under_the_recorded_default((client, server))


@pytest.mark.parametrize("name", ["negotiated", "Negotiate"])
def test_negotiate_each_name_logic_holds_on_the_fake(sspi_fake: FakeSspi, name: str) -> None:
    recorded: dict[str, object] = {}
    client, server = sspi_import.loopback("Negotiate")
    with client, server:
        windows.test_a_negotiate_export_under_each_name(
            (client, server), name, recorded.__setitem__
        )
    package = "NTLM" if name == "negotiated" else "Negotiate"
    assert recorded == {f"negotiate_export_imports_as_{package}": "works"}  # the fake takes both


def test_the_default_name_test_names_the_switch_when_it_is_wrong(
    sspi_fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A provider that refuses the negotiated name: the test must fail and name the switch.
    real = sspi_import.handoff.ImportedContext.__init__

    def refuse_ntlm(
        self: sspi_import.ImportedContext, package: str, *args: object, **kw: object
    ) -> None:
        if package == "NTLM":
            raise sspi_import.PackageNotFoundError(0x80090305, "ImportSecurityContextW")
        real(self, package, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sspi_import.handoff.ImportedContext, "__init__", refuse_ntlm)
    client, server = sspi_import.loopback("Negotiate")
    with (
        client,
        server,
        pytest.raises(pytest.fail.Exception, match="NEGOTIATE_IMPORTS_AS = 'credentials'"),
    ):
        windows.test_a_negotiate_export_imports_under_the_recorded_default((client, server))
