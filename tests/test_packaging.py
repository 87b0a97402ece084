"""Packaging metadata and the sdist's contents, read from the files a release is built from.

pyproject.toml: every Python version from requires-python's lower bound to 3.14 has its
classifier, one version source (``sspi_import.__version__``). README.md: no relative links
(they break on PyPI). MANIFEST.in: the sdist carries what the test suite needs.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import sspi_import

ROOT = Path(__file__).resolve().parent.parent
NEWEST_PYTHON_MINOR = 14  # the newest CPython the project claims; raise it with the classifier

# Outside tests/ (which must ship whole): what the tests read, relative to the root.
TEST_SUPPORT = [
    "tools/abi_table.json",
    "tools/gen_abi.py",
    "tools/abi_probe.c",
    "tools/gen_status_codes.py",
    "tools/status_meanings.txt",
    "examples/worker_handoff.py",
    "examples/pywin32_adopt.py",
    "benchmarks/count_instructions.py",
    "benchmarks/_common.py",
    "benchmarks/bench_plugin_startup.py",
    "docs/gen_errors.py",
    "docs/index.md",
    ".ci/check_junit.py",
    ".ci/junit_markers.py",
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
    "CHANGELOG.md",
]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        loads = tomllib.loads
    else:
        loads = pytest.importorskip(
            "tomli", reason="reading pyproject.toml needs tomllib (3.11+) or tomli"
        ).loads
    data: dict[str, Any] = loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


# pyproject.toml -------------------------------------------------------------------------


def _lower_bound_minor(requires_python: str) -> int:
    match = re.fullmatch(r"\s*>=\s*3\.(\d+)(?:\.\d+)?\s*", requires_python)
    assert match, f"requires-python {requires_python!r} is not of the form '>=3.N'"
    return int(match.group(1))


def test_lower_bound_is_read_from_requires_python() -> None:
    assert _lower_bound_minor(">=3.10") == 10
    assert _lower_bound_minor(">= 3.9.2") == 9
    with pytest.raises(AssertionError):
        _lower_bound_minor("~=3.10")


def test_classifiers_name_every_python_from_the_lower_bound_to_the_newest(
    pyproject: dict[str, Any],
) -> None:
    project = pyproject["project"]
    classifiers = set(project["classifiers"])
    lowest = _lower_bound_minor(project["requires-python"])
    expected = {
        f"Programming Language :: Python :: 3.{minor}"
        for minor in range(lowest, NEWEST_PYTHON_MINOR + 1)
    }
    assert sorted(expected - classifiers) == []
    claimed = {
        c for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert sorted(claimed - expected) == [], "a version classifier outside requires-python"
    assert "Programming Language :: Python :: Implementation :: CPython" in classifiers
    assert "Framework :: Pytest" in classifiers


def test_classifiers_pick_one_operating_system_claim(pyproject: dict[str, Any]) -> None:
    classifiers = pyproject["project"]["classifiers"]
    assert "Operating System :: Microsoft :: Windows" in classifiers
    assert "Operating System :: OS Independent" not in classifiers


def test_version_has_one_source_read_without_importing(pyproject: dict[str, Any]) -> None:
    project = pyproject["project"]
    assert "version" not in project, "a second, hand-edited version in pyproject.toml"
    assert "version" in project["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "sspi_import.__version__"}
    # setuptools reads the attribute from the source when it is a literal assignment,
    # without importing the package (which needs no build dependency then).
    source = ROOT / "src" / "sspi_import" / "__init__.py"
    literals = [
        node.value.value
        for node in ast.parse(source.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]
    assert literals == [sspi_import.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", literals[0])


def test_mypy_uses_sspilib_s_own_types(pyproject: dict[str, Any]) -> None:
    # sspilib ships py.typed and stubs (since 0.2.0, the test extra's lower bound): no
    # override may silence it (issue 22 §5; the comment said "sspilib ships no types").
    for override in pyproject["tool"]["mypy"]["overrides"]:
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        assert not any(m.split(".")[0] == "sspilib" for m in modules), override
    assert (
        "sspilib>=0.2; sys_platform != 'win32'"
        in pyproject["project"]["optional-dependencies"]["test"]
    )


def test_project_urls(pyproject: dict[str, Any]) -> None:
    urls = pyproject["project"]["urls"]
    assert urls["Documentation"] == "https://sspi-import.readthedocs.io/"
    assert urls["Source"].startswith("https://github.com/sspi-import/sspi-import")
    assert urls["Issues"] == "https://github.com/sspi-import/sspi-import/issues"
    assert "Changelog" in urls


# README.md ------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_ABSOLUTE = re.compile(r"(?:https?|mailto):", re.IGNORECASE)


def relative_links(markdown: str) -> list[str]:
    """Targets of the links and images in ``markdown`` that are not absolute URLs."""
    text = _FENCE.sub("", markdown)
    targets = [
        m.group(1) for pattern in (_INLINE_LINK, _REFERENCE, _HTML) for m in pattern.finditer(text)
    ]
    return [t for t in targets if not _ABSOLUTE.match(t)]


def test_relative_links_are_found() -> None:
    markdown = (
        "See [docs](docs/index.md), ![chart](img/x.png), [ok](https://example.org/a)\n"
        "and [top](#install).\n\n[ref]: CHANGELOG.md\n"
        '<a href="examples/x.py">x</a>\n'
        "```python\nx = y[0](z)  # [not](a-link)\n```\n"
    )
    assert relative_links(markdown) == [
        "docs/index.md",
        "img/x.png",
        "#install",
        "CHANGELOG.md",
        "examples/x.py",
    ]


def test_readme_has_no_relative_links() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert relative_links(readme) == [], "relative links break on PyPI: use absolute URLs"


# MANIFEST.in ----------------------------------------------------------------------------


def _glob(pattern: str) -> str:
    """A MANIFEST.in glob as a regex: ``*`` and ``?`` stop at ``/``."""
    out = []
    for part in re.split(r"(\*|\?|\[[^\]]*\])", pattern):
        if part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            out.append(part)
        else:
            out.append(re.escape(part))
    return "".join(out)


def manifest_files(template: str, files: list[str]) -> set[str]:
    """The subset of ``files`` (posix paths from the root) that ``template`` includes.

    Evaluates the MANIFEST.in commands in order, as setuptools does; the files setuptools
    adds by itself (packages, README, LICENSE, pyproject.toml) are not counted.
    """
    chosen: set[str] = set()
    for raw in template.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        command, *args = line.split()
        if command in {"graft", "prune"}:
            regexes = [re.escape(d.strip("/")) + "/.*" for d in args]
        elif command in {"include", "exclude"}:
            regexes = [_glob(p) for p in args]
        elif command in {"recursive-include", "recursive-exclude"}:
            directory, *patterns = args
            regexes = [re.escape(directory.strip("/")) + "/(?:.*/)?" + _glob(p) for p in patterns]
        elif command in {"global-include", "global-exclude"}:
            # also matches a directory name anywhere in the path (__pycache__)
            regexes = ["(?:.*/)?" + _glob(p) + "(?:/.*)?" for p in args]
        else:
            raise ValueError(f"MANIFEST.in command not understood here: {line!r}")
        matched = {f for f in files if any(re.fullmatch(r, f) for r in regexes)}
        if command in {"graft", "include", "recursive-include", "global-include"}:
            chosen |= matched
        else:
            chosen -= matched
    return chosen


def test_manifest_evaluation() -> None:
    files = ["tests/a.py", "tests/stub/s.c", "tests/__pycache__/a.pyc", "tools/t.json", "x.md"]
    assert manifest_files("include tests/*.py\n", files) == {"tests/a.py"}
    assert manifest_files("graft tests\nglobal-exclude __pycache__\n", files) == {
        "tests/a.py",
        "tests/stub/s.c",
    }
    assert manifest_files("recursive-include tools *.json\n# c\ninclude *.md", files) == {
        "tools/t.json",
        "x.md",
    }
    assert manifest_files("graft tests\nprune tests/stub\nexclude tests/a.py", files) == {
        "tests/__pycache__/a.pyc"
    }


def _tree(*tops: str) -> list[str]:
    skip = {"__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
    found = []
    for top in tops:
        for path in (ROOT / top).rglob("*"):
            relative = path.relative_to(ROOT)
            if path.is_file() and not skip & set(relative.parts):
                found.append(relative.as_posix())
    return found


def test_manifest_ships_the_test_support_files() -> None:
    template = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    tests = _tree("tests")
    assert "tests/conftest.py" in tests
    assert "tests/stubs.py" in tests
    assert "tests/stub/sspistub.c" in tests
    missing_support = [p for p in TEST_SUPPORT if not (ROOT / p).is_file()]
    assert missing_support == [], "TEST_SUPPORT names files that do not exist"
    shipped = manifest_files(template, [*tests, *TEST_SUPPORT])
    assert sorted(set(tests) - shipped) == [], "tests/ must ship whole"
    assert sorted(set(TEST_SUPPORT) - shipped) == []


# CHANGELOG.md ---------------------------------------------------------------------------

CHANGELOG = ROOT / "CHANGELOG.md"
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def test_the_changelog_has_one_structure() -> None:
    # Issue 22 §5: it had both "[Unreleased]" and "[0.1.0] - Unreleased". Keep a Changelog:
    # one [Unreleased] first, then released versions with their dates; in each, the kinds
    # of change at most once, in the usual order.
    text = CHANGELOG.read_text(encoding="utf-8")
    versions = re.findall(r"^## (.*)$", text, flags=re.MULTILINE)
    assert versions[0] == "[Unreleased]", versions
    for heading in versions[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading
    for section in re.split(r"^## .*$", text, flags=re.MULTILINE)[1:]:
        kinds = re.findall(r"^### (.*)$", section, flags=re.MULTILINE)
        assert all(k in KINDS for k in kinds), kinds
        assert kinds == sorted(set(kinds), key=KINDS.index), kinds


def test_changelog_ratios_say_what_they_were_measured_against() -> None:
    # Issue 22 §5: 0.1.0 quoted speed ratios against the old "raw" loop as if they held.
    bullets = re.split(r"^- ", CHANGELOG.read_text(encoding="utf-8"), flags=re.MULTILINE)
    quoted = [b for b in bullets if re.search(r"\b\d+\.\d+x\b", b)]
    assert quoted, "no ratio found: the test would hold nothing"
    for bullet in quoted:
        assert "against" in bullet, bullet
        assert "docs/performance.md" in bullet, bullet
