"""MkDocs hook: the version on every page, and the index of public names.

- ``{{ sspi_import_version }}`` in any page becomes ``sspi_import.__version__``, and the
  site name carries it too (``sspi_import 0.1.0``), so every page shows the version.
- ``<!-- public-names -->`` on reference/sspi_import.md becomes a table of
  ``sspi_import.__all__``: each name, what it is, and a link to the module page that
  documents it (the module that defines it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_SRC = Path(__file__).resolve().parent.parent / "src"
VERSION_MARK = "{{ sspi_import_version }}"
NAMES_MARK = "<!-- public-names -->"
NAMES_PAGE = "reference/sspi_import.md"
# Where each public name is documented: the page of the module that defines it.
PAGES = {
    "sspi_import.handoff": "handoff.md",
    "sspi_import.exported": "exported.md",
    "sspi_import.handshake": "handshake.md",
    "sspi_import.credentials": "credentials.md",
    "sspi_import.adopt": "adopt.md",
    "sspi_import.context": "context.md",
    "sspi_import.access_token": "access_token.md",
    "sspi_import.messages": "messages.md",
    "sspi_import.bindings": "bindings.md",
    "sspi_import.errors": "errors.md",
    "sspi_import.library": "library.md",
    "sspi_import.processes": "processes.md",
    "sspi_import._foreign": "adopt.md",  # the foreign handle forms, documented with adoption
    "sspi_import._raw.structs": "adopt.md",  # SecHandle, documented with the handle forms
}


def _package() -> Any:
    if str(_SRC) not in sys.path:  # not at import: MkDocs restores sys.path after loading
        sys.path.append(str(_SRC))
    import sspi_import

    return sspi_import


def _home(name: str, obj: Any) -> str:
    """The module page a public name is documented on."""
    if name == "SspiUnavailableError":
        return "errors.md"
    if name == "ForeignContextHandle":
        return "adopt.md"
    module = getattr(obj, "__module__", None)
    page = PAGES.get(module or "")
    if page is None:
        raise ValueError(f"sspi_import.{name} comes from {module}: add its page to PAGES")
    return page


def public_names() -> str:
    """The Markdown table of ``sspi_import.__all__``."""
    package = _package()
    rows = ["| Name | Kind | Documented in |", "| --- | --- | --- |"]
    for name in package.__all__:
        if name == "__version__":
            continue
        obj = getattr(package, name)
        kind = "class" if isinstance(obj, type) else "function" if callable(obj) else "type"
        if isinstance(obj, type) and issubclass(obj, BaseException):
            kind = "exception"
        page = _home(name, obj)
        module = page.removesuffix(".md")
        rows.append(f"| `{name}` | {kind} | [`sspi_import.{module}`]({page}) |")
    return "\n".join(rows)


def on_config(config: Any, **kwargs: Any) -> Any:
    """Put the version in the site name, which every page's header shows."""
    config["site_name"] = f"sspi_import {_package().__version__}"
    return config


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Fill in the version and, on the top-level page, the table of public names."""
    markdown = markdown.replace(VERSION_MARK, _package().__version__)
    if page.file.src_uri == NAMES_PAGE:
        if NAMES_MARK not in markdown:
            raise ValueError(f"{NAMES_PAGE} lost its {NAMES_MARK} marker")
        markdown = markdown.replace(NAMES_MARK, public_names())
    return markdown
