"""``FakeSspi`` itself (``testing/_fake.py``): installing and restoring it, every prototype
simulated, its constructor's checks.

The simulated provider's parts are tested beside their modules: ``test_fake_handshake.py``,
``test_fake_attributes.py``, ``test_fake_messages.py``, ``test_fake_transfer.py``,
``test_fake_kernel32.py``, ``test_fake_state.py``, ``test_fake_guard.py``, ``test_fake_wire.py``
(helpers that drive it through the bound prototypes: ``fake_raw.py``).
"""

from __future__ import annotations

import pytest

import sspi_import
from sspi_import import library
from sspi_import._raw.functions import PROTOTYPES, PROVIDER_EXTRAS
from sspi_import.testing import FakeSspi


def test_context_manager_installs_and_restores() -> None:
    assert library.swap(None) is None
    with FakeSspi() as outer:
        first = library.api()
        assert first.source is outer
        with FakeSspi(machine="INNER") as inner:
            assert library.api().source is inner
        assert library.api() is first
    assert library.swap(None) is None


def test_use_library_accepts_it_and_every_prototype_is_simulated() -> None:
    fake = FakeSspi()
    sspi_import.use_library(fake)
    assert "FakeSspi" in sspi_import.library_description()
    for name in {proto.symbol for proto in PROTOTYPES.values()} - PROVIDER_EXTRAS:
        assert fake.sspi_function_address(name)
        assert library.api().has(name)
    for name in PROVIDER_EXTRAS:  # one provider's own (sspi-rs's logger): not simulated
        assert fake.sspi_function_address(name) is None
        assert not library.api().has(name)
    assert fake.sspi_function_address("NoSuchFunction") is None
    sspi_import.use_library(None)


def test_constructor_validates_packages() -> None:
    with pytest.raises(ValueError, match="packages"):
        FakeSspi(packages=())


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"packages": "NTLM"}, TypeError, "not one str"),
        ({"packages": ("Negotiate",)}, ValueError, "Negotiate needs NTLM or Kerberos"),
        ({"user": ""}, ValueError, "user must be a non-empty str"),
        ({"password": b"p"}, TypeError, "password must be a str"),
        ({"lifetime": float("inf")}, ValueError, "finite number of seconds"),
        ({"lifetime": float("nan")}, ValueError, "finite number of seconds"),
        ({"lifetime": -1}, ValueError, "finite number of seconds"),
        ({"lifetime": True}, TypeError, "number of seconds"),
    ],
)
def test_settings_that_would_break_every_later_call_are_refused_at_once(
    kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    """Accepted, each made every handshake fail later with an internal error."""
    with pytest.raises(error, match=words):
        FakeSspi(**kwargs)  # type: ignore[arg-type]
