"""Output that never crashes on the console or pipe it is written to, and fits 80 columns.

Windows writes redirected output in the ANSI code page (cp1252 on most machines) unless
``PYTHONUTF8=1``: a user or package name outside it would raise ``UnicodeEncodeError``
half-way through a report. Every stream the commands write goes through ``SafeText``,
which replaces what the stream cannot encode with a backslash escape; ``main`` also
switches ``sys.stdout``/``sys.stderr`` to ``errors="backslashreplace"`` for what argparse
and getpass write there. JSON documents are written ASCII-only (``ensure_ascii``), which
is valid JSON whatever the encoding.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, TextIO, cast

PROG = "sspi-import"
WIDTH = 80
"""Text output is wrapped to this many columns (a word longer than that, a path say,
stays whole on its own line)."""


class OutputError(Exception):
    """Writing to standard output or error failed: ``main`` ends with one line and status 1.

    ``stream`` is the stream's name (``<stdout>``); ``error`` the ``OSError`` the write or
    flush raised: ``BrokenPipeError`` when the reader of a pipe left (``EINVAL`` on
    Windows, whose C runtime reports a pipe without a reader that way), ``ENOSPC`` on a
    full disk or ``/dev/full``.
    """

    def __init__(self, stream: str, error: OSError) -> None:
        super().__init__(stream, error)
        self.stream = stream
        self.error = error

    @property
    def reader_left(self) -> bool:
        """Whether the stream is a pipe whose reader went away (``... | head -1``)."""
        if isinstance(self.error, BrokenPipeError):
            return True
        return sys.platform == "win32" and self.error.errno == errno.EINVAL

    def __str__(self) -> str:
        """The one line ``main`` prints: which stream, and why it cannot be written."""
        if self.reader_left:
            why = "the program reading it has exited (the pipe is closed)"
        else:
            why = self.error.strerror or str(self.error) or type(self.error).__name__
        return f"{PROG}: cannot write to {self.stream.strip('<>')}: {why}"


class SafeText:
    """A text stream wrapper that writes what the stream cannot encode as escapes.

    A failed write or flush raises ``OutputError`` (not the bare ``OSError``), so that
    ``main`` can tell an output that went away from any other error.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.encoding: str = getattr(stream, "encoding", None) or "utf-8"
        self.name: str = str(getattr(stream, "name", None) or "<output>")

    def write(self, text: str) -> int:
        """Write ``text``; what the stream cannot encode becomes a backslash escape."""
        safe = text.encode(self.encoding, "backslashreplace").decode(self.encoding, "replace")
        try:
            return self._stream.write(safe)
        except OSError as exc:
            raise OutputError(self.name, exc) from exc

    def flush(self) -> None:
        """Flush the wrapped stream."""
        try:
            self._stream.flush()
        except OSError as exc:
            raise OutputError(self.name, exc) from exc


class _Nowhere(io.TextIOBase):
    """A standard stream that is missing (closed by the shell: ``>&-``; pythonw.exe)."""

    def write(self, text: str) -> int:
        """Take ``text`` and keep nothing."""
        return len(text)


def safe(stream: TextIO | SafeText | None) -> SafeText:
    """``stream`` wrapped in ``SafeText`` (once); a missing one (``None``) takes nothing."""
    if stream is None:
        return SafeText(cast(TextIO, _Nowhere()))
    return stream if isinstance(stream, SafeText) else SafeText(stream)


@contextlib.contextmanager
def forgiving_std_streams() -> Iterator[None]:
    """Make ``sys.stdout``/``sys.stderr`` escape unencodable text for the block.

    Only text streams that can be reconfigured (``io.TextIOWrapper``) and are strict now
    are changed, and their previous setting is put back afterwards.
    """
    restore: list[tuple[Any, str]] = []
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        errors = getattr(stream, "errors", None)
        if reconfigure is None or errors != "strict":
            continue
        with contextlib.suppress(ValueError, OSError):  # a closed or odd stream: leave it
            reconfigure(errors="backslashreplace")
            restore.append((stream, errors))
    try:
        yield
    finally:
        for stream, errors in restore:
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors=errors)


def wrap(text: str, indent: str = "", first: str | None = None) -> str:
    """``text`` wrapped to ``WIDTH`` columns; long words (paths) are never broken."""
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def say(out: SafeText, text: str, indent: str = "", first: str | None = None) -> None:
    """Write ``text`` wrapped to ``WIDTH`` columns, then a newline."""
    out.write(wrap(text, indent, first) + "\n")


def diagnose(err: SafeText, command: str, message: str) -> None:
    """A diagnostic on stderr: ``sspi-import COMMAND: message``, wrapped."""
    say(err, message, "  ", f"{PROG} {command}: ")


def dump_json(out: SafeText, document: dict[str, Any]) -> None:
    """Write one JSON document, ASCII-only (valid JSON in any encoding), then a newline."""
    out.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


def status_fields(status: int | None) -> dict[str, Any]:
    """``{"status": unsigned number, "symbol": name or None}`` for a status (or nulls)."""
    if status is None:
        return {"status": None, "symbol": None}
    from ..errors import _lookup

    value, info = _lookup(status)
    return {"status": value, "symbol": info.symbol if info is not None else None}


def error_object(exc: BaseException | str) -> dict[str, Any]:
    """The ``error`` member of every document: message, status and symbol (or nulls)."""
    from ..errors import SspiError

    status = exc.status if isinstance(exc, SspiError) else getattr(exc, "sspi_status", None)
    return {"message": str(exc), **status_fields(status)}


class UsageError(Exception):
    """The command line asks for something that cannot be done: exit status 2.

    Raised before any SSPI call; ``main`` prints ``sspi-import COMMAND: error: ...``
    on stderr and prints no document.
    """
