"""Griffe extensions for the API pages (mkdocs.yml loads both).

- ``EnumValues``: enum members show their number, not the expression that made it.
  ``RESET_NEW = C.SECPKG_CONTEXT_EXPORT_RESET_NEW`` says nothing to a reader;
  ``RESET_NEW = 0x1`` does. For every class derived from an ``enum`` class, each
  member's value is replaced by the runtime value (hex for flags), read by importing the
  module; docstrings stay those written in the source.
- ``LiteralBlocks``: the docstrings introduce code with reST's ``::``. Markdown knows no
  such marker: ``text::`` becomes ``text:`` and the indented block after it a fenced
  ``python`` block, so the page shows neither the marker nor unhighlighted code.
"""

from __future__ import annotations

import enum
import importlib
import re
import textwrap
from typing import Any

import griffe


class EnumValues(griffe.Extension):
    """Replace enum members' values by their numbers."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the loaded package once it is complete."""
        self._walk(pkg)

    def _walk(self, module: griffe.Module) -> None:
        for member in module.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Module):
                self._walk(member)
            elif isinstance(member, griffe.Class):
                self._fix(module.path, member)

    def _fix(self, module_path: str, cls: griffe.Class) -> None:
        try:
            runtime = getattr(importlib.import_module(module_path), cls.name)
        except (ImportError, AttributeError):
            return
        if not (isinstance(runtime, type) and issubclass(runtime, enum.Enum)):
            return
        for name, attribute in cls.members.items():
            if not isinstance(attribute, griffe.Attribute):
                continue
            value = getattr(runtime, name, None)
            if isinstance(value, runtime):
                number = value.value
                if isinstance(number, int) and issubclass(runtime, enum.Flag):
                    attribute.value = f"0x{number:X}"
                else:
                    attribute.value = repr(number)


_MARKER = re.compile(r"(?:\s*::|(?<=\S)::)$")  # "text::" or a lone "::" at a line's end


def literal_blocks(text: str) -> str:
    """``text::`` + an indented block, as Markdown: ``text:`` + a fenced python block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        head = line.rstrip()
        lead = head[: len(head) - len(head.lstrip())]
        if head.strip() == "::":
            pass  # a lone marker: the paragraph before it stays as written
        elif head.endswith(" ::"):
            out.append(head[:-3])
        else:
            out.append(head[:-1])  # "text::" -> "text:"
        i += 1
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(lead)):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        code = textwrap.dedent("\n".join(line for line in block)).strip("\n")
        out += ["", f"{lead}```python", *(lead + c if c else c for c in code.split("\n"))]
        out += [f"{lead}```", ""]
    return "\n".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class LiteralBlocks(griffe.Extension):
    """Rewrite reST literal blocks in every docstring of the package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the loaded package once it is complete."""
        self._walk(pkg)

    def _walk(self, obj: griffe.Object) -> None:
        if obj.docstring is not None and "::" in obj.docstring.value:
            obj.docstring.value = literal_blocks(obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member)  # type: ignore[arg-type]
