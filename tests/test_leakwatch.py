"""``LeakWatch`` (``sspi_fake`` uses it): ours recorded, every other warning untouched."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import sspi_import
from sspi_import.testing import FakeSspi
from sspi_import.testing._leakwatch import LeakWatch, is_ours


class Marker:
    """An object to pass as a warning's ``source``."""


@pytest.fixture
def fake() -> Iterator[FakeSspi]:
    with FakeSspi() as fake:
        yield fake
        fake.assert_no_leaks()


def drop_an_owner() -> None:
    """Leave one handle to its finalizer: an sspi_import ``ResourceWarning``."""
    sspi_import.Credentials.acquire("NTLM", "outbound")
    gc.collect()


def test_ours_are_recorded_and_every_other_warning_goes_on_unchanged(fake: FakeSspi) -> None:
    marker = Marker()
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        with LeakWatch() as watch:
            drop_an_owner()
            warnings.warn("x", UserWarning, stacklevel=1, source=marker)
            warnings.warn("a file's", ResourceWarning, stacklevel=1)  # a ResourceWarning, not ours
    assert len(watch.leaked) == 1
    assert str(watch.leaked[0].message).startswith("unclosed <Credentials")
    assert [(m.category, str(m.message)) for m in outer] == [
        (UserWarning, "x"),
        (ResourceWarning, "a file's"),
    ]
    assert outer[0].source is marker  # the same WarningMessage: nothing lost on the way


@pytest.mark.parametrize("action", ["error", "ignore", "default"])
def test_ours_are_recorded_whatever_the_filters(fake: FakeSspi, action: Any) -> None:
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter(action)
        with LeakWatch() as watch:
            drop_an_owner()
    assert len(watch.leaked) == 1
    assert outer == []


def test_the_other_filters_still_apply(fake: FakeSspi) -> None:
    with warnings.catch_warnings(), LeakWatch():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(UserWarning, match="still an error"):
            warnings.warn("still an error", UserWarning, stacklevel=1)


def test_a_recorder_entered_inside_takes_ours_too(fake: FakeSspi) -> None:
    # How a test drops an owner on purpose: pytest.warns inside the watch.
    with LeakWatch() as watch:
        with pytest.warns(ResourceWarning, match="unclosed <Credentials"):
            drop_an_owner()
        drop_an_owner()  # after the inner recorder: the watch's again
    assert len(watch.leaked) == 1


def test_exit_puts_back_the_filters_and_both_hooks(fake: FakeSspi) -> None:
    filters = list(warnings.filters)
    impl = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
    show = warnings.showwarning
    with LeakWatch():
        assert warnings._showwarnmsg_impl is not impl  # type: ignore[attr-defined]
    assert warnings.filters == filters
    assert warnings._showwarnmsg_impl is impl  # type: ignore[attr-defined]
    assert warnings.showwarning is show


def test_a_replaced_showwarning_is_wrapped_the_same_way(
    fake: FakeSspi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # logging.captureWarnings(True) and others replace showwarning itself.
    seen: list[str] = []

    def showwarning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(str(message))

    with warnings.catch_warnings():
        monkeypatch.setattr(warnings, "showwarning", showwarning)
        warnings.simplefilter("always")
        with LeakWatch() as watch:
            drop_an_owner()
            warnings.warn("to the replacement", UserWarning, stacklevel=1)
        assert warnings.showwarning is showwarning
    assert seen == ["to the replacement"]
    assert len(watch.leaked) == 1


def test_a_python_that_routes_warnings_otherwise_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    filters = list(warnings.filters)
    impl = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
    monkeypatch.setattr(warnings, "_showwarnmsg", lambda message: None)
    with pytest.raises(RuntimeError, match="cannot watch for handles left to a finalizer"):
        LeakWatch().__enter__()
    assert warnings.filters == filters  # nothing left behind
    assert warnings._showwarnmsg_impl is impl  # type: ignore[attr-defined]


def test_is_ours() -> None:
    assert is_ours(ResourceWarning, sspi_import._handle.__file__)
    assert not is_ours(UserWarning, sspi_import._handle.__file__)
    assert not is_ours(ResourceWarning, __file__)
