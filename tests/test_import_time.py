"""Start-up cost, held by module list (never by time: timings live in benchmarks/).

``import sspi_import`` must stay as cheap as ``import sspilib``; the modules below are
the expensive ones it used to pull in (benchmarks/bench_import_time.py measures).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

HEAVY = ("importlib.metadata", "dataclasses", "inspect", "ctypes.wintypes", "logging")

STATEMENTS = (
    "import sspi_import",
    "from sspi_import import ImportedContext, SecurityContext, SspiError, export_context",
)


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize("statement", STATEMENTS)
def test_import_pulls_in_no_heavy_module(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "sspi_import" in loaded  # the import really ran
    assert sorted(loaded.intersection(HEAVY)) == []


def test_find_sspi_rs_still_finds_metadata_lazily() -> None:
    # The lazy import inside find_sspi_rs must work in a fresh process.
    code = (
        "import sspi_import, sys\n"
        "try:\n"
        "    sspi_import.find_sspi_rs()\n"
        "except sspi_import.SspiUnavailableError:\n"
        "    pass\n"
        "print('importlib.metadata' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


# The package imports its modules on first use (issue 22 §2.2: the pytest plugin, a
# submodule, loads in every pytest session of an environment that has sspi-import).

PACKAGES = ("sspi_import", "sspi_import.testing")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_the_package_runs_none_of_its_modules(package: str) -> None:
    loaded = _modules_after(f"import {package}")
    assert sorted(m for m in loaded if m.split(".")[0] == "sspi_import") == sorted(
        {"sspi_import", package}
    )


def _type_checking_imports(package: str) -> dict[str, str]:
    """name -> module of the ``from .module import name`` lines under ``if TYPE_CHECKING``."""
    module = importlib.import_module(package)
    assert module.__file__ is not None
    tree = ast.parse(pathlib.Path(module.__file__).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                assert statement.level == 1
                assert statement.module is not None
                for alias in statement.names:
                    found[alias.asname or alias.name] = statement.module
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_type_checkers_and_the_run_time_see_the_same_names(package: str) -> None:
    module = importlib.import_module(package)
    static = _type_checking_imports(package)
    public = set(module.__all__) - {"__version__"}
    assert set(static) == public
    for name, home in static.items():
        value = getattr(module, name)  # imported on first use
        assert value is getattr(importlib.import_module(f"{package}.{home}"), name), name


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import sspi_import, sspi_import.testing as t\n"
        "for m in (sspi_import, t):\n"
        "    for name in m.__all__:\n"
        "        getattr(m, name)\n"
        "from sspi_import import *\n"
        "print(sspi_import.errors.SspiError is SspiError, sspi_import._raw.loader.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "sspi_import._raw.loader"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import sspi_import
    import sspi_import.testing

    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        sspi_import.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'FakeSsp'"):
        sspi_import.testing.FakeSsp  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(sspi_import, "__wrapped__")
    assert "ImportedContext" in dir(sspi_import)
