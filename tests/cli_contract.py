"""The command line's JSON contract, for the tests: run a command, validate its document.

Every ``--json`` document is validated against the schema file shipped beside the
command (``sspi_import/cli/*.schema.json``, read as package data). jsonschema is no
test dependency of the project, so a small validator checks the subset of JSON Schema
2020-12 the files use (``KEYWORDS``; a test fails if a file uses any other keyword, so
nothing is silently ignored). Where jsonschema is installed, it validates too.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from sspi_import.__main__ import main

KEYWORDS = frozenset(
    {
        # annotations and containers
        "$schema",
        "$id",
        "$defs",
        "title",
        "description",
        # assertions this validator applies
        "$ref",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "pattern",
        "minItems",
        "maxItems",
    }
)

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def schema(command: str) -> dict[str, Any]:
    """The shipped schema of ``command``'s document, read as package data."""
    text = resources.files("sspi_import.cli").joinpath(f"{command}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def keywords_used(node: Any, found: set[str] | None = None) -> set[str]:
    """Every keyword a schema uses (property names under ``properties`` excluded)."""
    found = set() if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    keywords_used(sub, found)
            elif key not in ("enum", "const", "required"):
                keywords_used(value, found)
    elif isinstance(node, list):
        for item in node:
            keywords_used(item, found)
    return found


def errors(value: Any, node: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``node`` (empty when it is valid)."""
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        return errors(value, root["$defs"][ref.removeprefix("#/$defs/")], root, path)
    found: list[str] = []
    if "type" in node:
        allowed = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(_TYPES[t](value) for t in allowed):
            return [f"{path}: {value!r} is not of type {allowed}"]
    if "const" in node and value != node["const"]:
        found.append(f"{path}: {value!r} is not {node['const']!r}")
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: {value!r} is not one of {node['enum']}")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            found.append(f"{path}: {value} < {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            found.append(f"{path}: {value} > {node['maximum']}")
    if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
        found.append(f"{path}: {value!r} does not match {node['pattern']}")
    if isinstance(value, dict):
        properties = node.get("properties", {})
        for key in node.get("required", []):
            if key not in value:
                found.append(f"{path}: {key!r} is missing")
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], root, f"{path}.{key}")
            elif node.get("additionalProperties", True) is False:
                found.append(f"{path}: {key!r} is not allowed")
    if isinstance(value, list):
        if "minItems" in node and len(value) < node["minItems"]:
            found.append(f"{path}: fewer than {node['minItems']} items")
        if "maxItems" in node and len(value) > node["maxItems"]:
            found.append(f"{path}: more than {node['maxItems']} items")
        if "items" in node:
            for index, item in enumerate(value):
                found += errors(item, node["items"], root, f"{path}[{index}]")
    return found


def validate(document: Any, command: str) -> None:
    """Fail the test unless ``document`` is valid against ``command``'s shipped schema."""
    root = schema(command)
    problems = errors(document, root, root)
    assert not problems, "\n".join(problems)
    try:
        import jsonschema  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return
    jsonschema.Draft202012Validator(root).validate(document)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: exit status, stdout, stderr."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """``main(argv + ["--json"])``; the document, validated against its command's schema."""
    status, out, _ = run(capsys, *argv, "--json")
    assert out.isascii(), "JSON output is ASCII-only"
    document = json.loads(out)
    validate(document, argv[0])
    return status, document


def fits(text: str, width: int = 80) -> bool:
    """Whether every line of ``text`` fits ``width`` columns (what a terminal shows)."""
    return all(len(line) <= width for line in text.splitlines())
