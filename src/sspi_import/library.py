"""Choosing the SSPI library: ``use_library`` and ``find_sspi_rs``.

By default the first call loads ``secur32.dll`` on Windows, or the library named by the
``SSPI_IMPORT_LIBRARY`` environment variable anywhere. ``use_library`` replaces it for
the whole process: a path, an already loaded ``ctypes`` library, or a provider object
such as ``sspi_import.testing.FakeSspi``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import TYPE_CHECKING

from ._raw import loader
from ._raw.loader import SspiLibrary
from .errors import SspiUnavailableError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["SspiLibrary", "find_sspi_rs", "library_description", "use_library"]


def use_library(library: str | os.PathLike[str] | ctypes.CDLL | SspiLibrary | None) -> None:
    """Send every following SSPI call to ``library``; ``None`` goes back to the default.

    ``library`` is a path to an SSPI-compatible shared library (loaded at once, so a bad
    path fails here, with ``SspiUnavailableError``), a ``ctypes.CDLL``/``WinDLL`` already
    loaded, or an object with ``sspi_function_address(name)``. Handles opened before
    the switch keep using the library that made them, until they are closed.
    """
    loader.swap(None if library is None else loader.load(library))


def library_description() -> str:
    """Describe the library calls go to, loading the default one if needed."""
    return loader.api().description


def find_sspi_rs() -> Path:
    """Locate sspi-rs, the SSPI library the ``sspilib`` wheel bundles (Linux and macOS).

    Raises ``SspiUnavailableError`` saying what to install when it is not there. On
    Windows, sspilib uses secur32 and bundles nothing: use the default library there.
    """
    # Imported here, not at the top: importlib.metadata and pathlib are a large share of
    # the cost of `import sspi_import`, and only this function needs them.
    from importlib import metadata
    from pathlib import Path

    try:
        files = metadata.files("sspilib") or []
    except metadata.PackageNotFoundError:
        raise SspiUnavailableError(
            "sspi-rs is not installed: pip install sspilib (its wheel bundles sspi-rs)"
        ) from None
    suffix = ".dylib" if sys.platform == "darwin" else ".so"
    for file in files:
        name = file.name
        if name.startswith("libsspi") and name.endswith(suffix):
            return Path(str(file.locate())).resolve()
    raise SspiUnavailableError(
        "the installed sspilib wheel bundles no sspi-rs library "
        f"(libsspi*{suffix}); on Windows use secur32, elsewhere a manylinux/macOS wheel"
    )
