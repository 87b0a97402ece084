"""The Windows hand-off tests' own logic, run here against the simulated provider.

``test_windows_handoff.py`` runs only on the Windows CI lane. Running the same test bodies
against ``FakeSspi`` proves, on every lane, that the tests themselves are sound (they use
the API correctly and can pass), so a Windows failure points at Windows behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import sspi_import
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
