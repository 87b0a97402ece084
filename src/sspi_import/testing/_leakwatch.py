"""``LeakWatch``: see sspi_import's ``ResourceWarning`` in a test, and hide no other warning.

The ``sspi_fake`` fixture fails a test that left a handle to a finalizer, whatever the
warning filters say (``-W ignore``, Python's default that hides ``ResourceWarning``,
``filterwarnings = error``), and must leave every other warning where it would have gone
without it: pytest's own recording, ``recwarn``, ``pytest.warns``, ``-W error``.

The one trick, fenced here: ``warnings.catch_warnings(record=True)`` records by putting
``log.append`` in ``warnings._showwarnmsg_impl`` (and the original ``showwarning`` back,
so that ``warnings._showwarnmsg`` reaches it); pytest records each test's warnings that
way. A ``LeakWatch`` takes the same place, inside its own ``catch_warnings()`` (which puts
both back on exit), but keeps only sspi_import's ``ResourceWarning`` and hands every
other ``WarningMessage`` on, unchanged, to the implementation it replaced. A filter put
first, ``("always", ResourceWarning, module "sspi_import.*")``, makes sure ours are shown
(neither ignored nor raised) and matches no other warning. If ``showwarning`` itself was
replaced by someone (``logging.captureWarnings``), the watch wraps that too, the same way.

It nests like any recorder: one entered inside it (``pytest.warns(ResourceWarning)``, a
``catch_warnings(record=True)`` in the test) receives everything, ours included, which is
how a test drops an owner on purpose. At entry a probe warning must come back through the
watch, or entering fails, saying so: a Python that routes warnings otherwise is found by
this project's own suite, not by a leak that passes. Not covered: Python 3.14's
context-aware warnings (the free-threaded build's default), where ``catch_warnings``
records per context; there an inner ``pytest.warns`` cannot take ours from the watch.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

__all__ = ["LeakWatch", "is_ours"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../sspi_import
_MODULES = r"sspi_import\."  # matches the module name of the code that warned


def is_ours(category: type[Warning], filename: str) -> bool:
    """Whether a warning is a ``ResourceWarning`` raised by code of this package."""
    return issubclass(category, ResourceWarning) and os.path.abspath(filename).startswith(
        _PACKAGE + os.sep
    )


class LeakWatch:
    """Record sspi_import's ``ResourceWarning`` while entered; pass every other warning on.

    ``leaked`` lists the recorded ``WarningMessage`` objects, in order.
    """

    def __init__(self) -> None:
        self.leaked: list[warnings.WarningMessage] = []
        """sspi_import's ``ResourceWarning`` seen while entered."""
        self._catch = warnings.catch_warnings()  # not record=True: it would take them all
        self._impl: Any = None
        self._showwarning: Any = None
        self._probe: Warning | None = None
        self._probed = False

    def __enter__(self) -> LeakWatch:
        """Start watching; ``RuntimeError`` if warnings do not take the route known here."""
        self._catch.__enter__()
        try:
            warnings.filterwarnings("always", category=ResourceWarning, module=_MODULES)
            self._impl = warnings._showwarnmsg_impl  # type: ignore[attr-defined]
            warnings._showwarnmsg_impl = self._show  # type: ignore[attr-defined]
            if warnings.showwarning is not warnings._showwarning_orig:  # type: ignore[attr-defined]
                self._showwarning = warnings.showwarning
                warnings.showwarning = self._show_args
            self._check_route()
        except BaseException:
            self._catch.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop watching: the filters and both hooks are as they were at entry."""
        self._catch.__exit__(None, None, None)  # it ignores the exception either way

    def _show(self, message: warnings.WarningMessage) -> None:
        if message.message is self._probe:
            self._probed = True
        elif is_ours(message.category, message.filename):
            # Without its source (the owner the finalizer warned about): kept, it would
            # keep that owner alive, and what it holds (its credentials) would be reported
            # in a later test, or never.
            self.leaked.append(
                warnings.WarningMessage(
                    message.message, message.category, message.filename, message.lineno
                )
            )
        else:
            self._impl(message)  # the same object: source, file and line included

    def _show_args(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if message is self._probe or is_ours(category, filename):
            self._show(warnings.WarningMessage(message, category, filename, lineno, file, line))
        else:
            self._showwarning(message, category, filename, lineno, file, line)

    def _check_route(self) -> None:
        self._probe = ResourceWarning("sspi_import LeakWatch: probe of the warning route")
        warnings.warn_explicit(self._probe, ResourceWarning, __file__, 0, __name__, {})
        if not self._probed:
            raise RuntimeError(
                "sspi_fake cannot watch for handles left to a finalizer on this Python: "
                "a warning did not reach warnings._showwarnmsg_impl. Please report it "
                "(https://github.com/sspi-import/sspi-import/issues) with your Python version"
            )
