"""The public types reject misuse under ``mypy --strict`` and name no private type.

mypy runs once (``mypy.api.run``) over small snippets: each ``REJECTED`` snippet must
draw an error on its marked line, the ``ACCEPTED`` one none at all.
"""

from __future__ import annotations

import builtins
import importlib.util
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sspi_import

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """\
from __future__ import annotations
import multiprocessing
import subprocess
import sspi_import
from sspi_import import (
    ExportFlags, ExportedContext, ImportedContext, SecHandle, SecurityContext,
    adopt_context, export_context, use_library,
)
from sspi_import.testing import FakeSspi, FaultInjector, FaultInjectorFactory, Library

def given_context() -> SecurityContext:
    raise NotImplementedError
def given_exported() -> ExportedContext:
    raise NotImplementedError
def given_faults_factory() -> FaultInjectorFactory:
    raise NotImplementedError
ctx = given_context()
exported = given_exported()
faults_factory = given_faults_factory()
"""

# name -> the statement that must be rejected (it is the snippet's last line).
REJECTED = {
    "export_string": 'export_context("a string")',
    "export_float": "export_context(2.5)",
    "export_object": "export_context(object())",
    "export_flags_str": 'export_context(ctx, "DELETE_OLD")',
    "export_flags_float": "export_context(ctx, flags=1.0)",
    "export_flags_or_str": 'export_context(ctx, ExportFlags.DELETE_OLD | "RESET_NEW")',
    "export_flags_unknown": "export_context(ctx, ExportFlags.TO_KERNEL)",
    "export_pair_of_str": 'export_context(("1", "2"))',
    "adopt_float": "adopt_context(3.5)",
    "adopt_object": "adopt_context(object())",
    "adopt_package_int": "adopt_context((1, 2), package=5)",
    "import_package_int": 'ImportedContext(1, b"x")',
    "import_blob_str": 'ImportedContext("NTLM", "text")',
    "import_token_str": 'ImportedContext("NTLM", b"x", "token")',
    "for_process_str": 'exported.for_process("1234")',
    "for_process_object": "exported.for_process(object())",
    "use_library_int": "use_library(3)",
    "faults_factory_int": "faults_factory(3)",
    # sspilib is typed (py.typed and stubs): mypy checks calls into it, in the tests too.
    "sspilib_typed": (
        "import sspilib.raw; sspilib.raw.encrypt_message(sspilib.raw.CtxtHandle(), 0, b'', 0)"
    ),
    "faults_factory_result": "faults_factory(FakeSspi()).no_such_method()",
}

ACCEPTED = """\
class Pywin32Like:
    def Detach(self) -> int:
        return 0

flags: ExportFlags = ExportFlags.DELETE_OLD | ExportFlags.RESET_NEW
a: ExportedContext = export_context(ctx)
b = export_context(ctx, ExportFlags.DELETE_OLD)
c = export_context(ctx, flags)
d = export_context(ctx, 2)
e = export_context(SecHandle(1, 2))
f = export_context((1, 2))
g = export_context(0x1234)
h = export_context(Pywin32Like())
i = adopt_context((1, 2), "NTLM")
j = adopt_context(SecHandle(1, 2))
k = adopt_context(Pywin32Like(), package=None)
m = ImportedContext("NTLM", b"x")
n = ImportedContext("NTLM", bytearray(b"x"), None)
o = ImportedContext("NTLM", memoryview(b"x"), 4)
p = ImportedContext.from_exported(a)
q = exported.for_process(1234)
r = exported.for_process(multiprocessing.Process())
s = exported.for_process(subprocess.Popen(["true"]))
use_library(FakeSspi())
use_library("/usr/lib/libsspi.so")
use_library(None)
handle: sspi_import.ForeignContextHandle = (1, 2)
process: sspi_import.HasPid = multiprocessing.Process()
library: sspi_import.SspiLibrary = FakeSspi()
like: sspi_import.PyCtxtHandleLike = Pywin32Like()
path: Library = "/usr/lib/libsspi.so"
faults: FaultInjector = faults_factory(FakeSspi())
over_path = faults_factory(path)
again = sspi_import.Credentials.acquire("NTLM", sspi_import.Credentials.acquire("NTLM").usage)
data = sspi_import.IovBuffer(sspi_import.BufferType.DATA, b"x")
iov = ctx.wrap_iov([sspi_import.IovBuffer(sspi_import.BufferType.TOKEN), data])
sent = bytes(iov.buffers[0].data) + bytes(iov.buffers[1].data)
sealed_size: int = len(iov.buffers[1].data)
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[int]]:
    """Run mypy once over every snippet; the error lines found in each file."""
    folder = tmp_path_factory.mktemp("typing")
    files = {}
    for name, statement in REJECTED.items():
        files[name] = PRELUDE + statement + "\n"
    files["accepted"] = PRELUDE + ACCEPTED
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(folder / ".cache"),
            "--config-file",
            "",  # the snippets alone, not the project's file list
            "--python-version",
            "3.10",
            "--no-error-summary",
            "--show-error-codes",
            *(str(folder / f"{name}.py") for name in files),
        ]
    )
    assert not stderr, stderr
    errors: dict[str, list[int]] = {name: [] for name in files}
    for line in stdout.splitlines():
        found = re.match(r"(?:.*[/\\])?(\w+)\.py:(\d+): error:", line)
        if found:
            errors[found[1]].append(int(found[2]))
    print(stdout)  # shown when a test fails
    return errors


def test_correct_uses_pass(mypy_errors: dict[str, list[int]]) -> None:
    assert mypy_errors["accepted"] == []


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_misuse_is_rejected(mypy_errors: dict[str, list[int]], name: str) -> None:
    if name.startswith("sspilib") and importlib.util.find_spec("sspilib") is None:
        pytest.skip("sspilib is not installed (the test extra installs it off Windows)")
    last_line = PRELUDE.count("\n") + 1
    assert mypy_errors[name] == [last_line], f"mypy did not reject: {REJECTED[name]}"


# A public signature may name only what ``sspi_import`` exports, builtins and the
# standard library modules below: never ``_raw.structs.SecHandle``, ``_HasPid``, ...
PUBLIC_SIGNATURES: list[Callable[..., Any]] = [
    sspi_import.export_context,
    sspi_import.adopt_context,
    sspi_import.ImportedContext.__init__,
    sspi_import.ImportedContext.from_exported,
    sspi_import.ExportedContext.for_process,
    sspi_import.use_library,
]
STANDARD = {"os", "ctypes", "None"}


@pytest.mark.parametrize("function", PUBLIC_SIGNATURES, ids=lambda f: f.__qualname__)
def test_public_signatures_name_public_types(function: Callable[..., Any]) -> None:
    annotations = [
        str(parameter.annotation)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.annotation is not inspect.Parameter.empty
    ]
    annotations.append(str(inspect.signature(function).return_annotation))
    for annotation in annotations:
        for name in re.findall(r"[A-Za-z_][\w.]*", annotation):
            head = name.split(".")[0]
            if head in STANDARD or hasattr(builtins, head) or name == "Self":
                continue
            assert not name.startswith("_"), f"{function.__qualname__}: {annotation}"
            assert hasattr(sspi_import, head), (
                f"{function.__qualname__} names {name}, which sspi_import does not export"
            )


def test_the_accepted_snippet_is_checked_at_all() -> None:
    # Guard against a vacuous pass: the prelude must really define the names used.
    compiled = compile(textwrap.dedent(PRELUDE + ACCEPTED), "accepted", "exec")
    assert "export_context" in compiled.co_names


def test_error_classes_declare_the_attributes_they_override() -> None:
    # Issue 22 §4: pyright --verifytypes (run by .ci/run, which needs Node.js) calls an
    # unannotated override ambiguous: each error class's `symbols`, SspiError's
    # `self.errno = None`. The suite catches the pattern without pyright.
    import ast

    tree = ast.parse((ROOT / "src" / "sspi_import" / "errors.py").read_text(encoding="utf-8"))
    unannotated = [
        f"{node.name}.{target.id}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for statement in node.body
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name) and target.id == "symbols"
    ]
    assert unannotated == []
    declared = {
        statement.target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "SspiError"
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    }
    assert {"symbols", "errno", "strerror", "winerror", "detail"} <= declared
