"""The architecture, held by reading the source: fences a change cannot cross unnoticed.

- the raw layer (``_raw``) imports nothing above it;
- the package's modules import each other without a cycle (function-level imports
  included: a cycle worked around inside a function is still a cycle);
- an owner's state is written, and its lock taken, only in ``_handle.py``;
- every DLL call goes through a call helper that checks its result as the prototype
  table declares (``_handle``'s owner helpers, ``library.call``): nothing else calls a
  declared function or a status check directly;
- every SDK constant is declared in ``_raw/constants.py`` (where the ABI test holds it).

``sspi_import/testing`` is the simulated *provider* (it implements the functions, with
locks of its own), so the owner and call fences do not apply to it; the others do.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import Iterator

import sspi_import
from sspi_import._raw.functions import PROTOTYPES

PACKAGE = pathlib.Path(sspi_import.__file__).parent
OWNER_STATE = {
    "_handle",
    "_lock",
    "_lib",
    "_free",
    "_ref",
    "_pins",
    "_parked",
    "_pending",
    "_busy",
    "_generation",
}
SDK_CONSTANT = re.compile(
    r"^_?(SECPKG|SECBUFFER|SECQOP|ISC_(REQ|RET)|ASC_(REQ|RET)|SEC_WINNT|SECURITY_"
    r"|DUPLICATE_|PROCESS_DUP_HANDLE)"
)


def _modules() -> Iterator[tuple[str, pathlib.Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path, ast.parse(path.read_text(encoding="utf-8"))


def _library_modules() -> Iterator[tuple[str, pathlib.Path, ast.Module]]:
    for name, path, tree in _modules():
        if not name.startswith("sspi_import.testing"):
            yield name, path, tree


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def _imports(name: str, tree: ast.Module) -> set[str]:
    """The ``sspi_import`` modules ``name`` imports, at any level but ``TYPE_CHECKING``."""
    skip = _type_checking_nodes(tree)
    package = name if name.count(".") == 0 or _is_package(name) else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module.startswith("sspi_import"):
                for alias in node.names:
                    candidate = f"{module}.{alias.name}"
                    found.add(candidate if _exists(candidate) else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sspi_import"))
    found.discard(name)
    return {m for m in found if _exists(m)}


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def _exists(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_the_raw_layer_imports_nothing_above_it() -> None:
    for name, _, tree in _modules():
        if name.startswith("sspi_import._raw"):
            above = {m for m in _imports(name, tree) if not m.startswith("sspi_import._raw")}
            assert not above, f"{name} imports {sorted(above)}: _raw must import nothing public"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> the modules it imports), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    graph = {name: _imports(name, tree) - {"sspi_import"} for name, _, tree in _modules()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


Module = tuple[str, pathlib.Path, ast.Module]


def _owner_writes(modules: list[Module]) -> list[str]:
    offenders: list[str] = []
    for name, path, tree in modules:
        if name == "sspi_import._handle":
            continue
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
                targets = [node.target]
            elif isinstance(node, ast.Delete):
                targets = list(node.targets)
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Attribute) and sub.attr in OWNER_STATE:
                        offenders.append(f"{path.name}:{sub.lineno}: writes .{sub.attr}")
    return offenders


def _lock_uses(modules: list[Module]) -> list[str]:
    return [
        f"{path.name}:{node.lineno}: uses ._lock"
        for name, path, tree in modules
        if name != "sspi_import._handle"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "_lock"
    ]


def _direct_calls(modules: list[Module]) -> list[str]:
    helpers = {"sspi_import._handle", "sspi_import.library"}
    declared = set(PROTOTYPES)
    offenders: list[str] = []
    for name, path, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in declared and name not in helpers:
                offenders.append(f"{path.name}:{node.lineno}: calls {called} directly")
            if called in {"check", "check_win32"} and name != "sspi_import.errors":
                offenders.append(f"{path.name}:{node.lineno}: calls {called} directly")
    return offenders


def _sdk_constants(modules: list[Module]) -> list[str]:
    offenders: list[str] = []
    for name, path, tree in modules:
        if name.startswith("sspi_import._raw"):
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                is_number = isinstance(value, ast.Constant) and isinstance(value.value, int)
                for target in targets:
                    if isinstance(target, ast.Name) and SDK_CONSTANT.match(target.id) and is_number:
                        offenders.append(f"{path.name}:{node.lineno}: {target.id}")
    return offenders


def test_owner_state_is_written_only_in_handle_py() -> None:
    assert _owner_writes(list(_library_modules())) == []


def test_no_module_but_handle_py_takes_an_owners_lock() -> None:
    assert _lock_uses(list(_library_modules())) == []


def test_every_dll_call_goes_through_a_checking_helper() -> None:
    """No module calls a declared function or a status check itself."""
    assert _direct_calls(list(_library_modules())) == []


def test_every_sdk_constant_is_declared_in_raw_constants() -> None:
    assert _sdk_constants(list(_modules())) == []


def test_each_fence_sees_a_violation() -> None:
    """The fences above can fail: each finds what a module breaking it does."""
    bad = ast.parse(
        "SECBUFFER_TOKEN = 2\n"
        "def f(owner, lib):\n"
        "    owner._handle = None\n"
        "    owner._pins += 1\n"
        "    with owner._lock:\n"
        "        lib.DeleteSecurityContext(owner)\n"
        "    check(0, 'x')\n"
    )
    module = [("sspi_import.elsewhere", pathlib.Path("elsewhere.py"), bad)]
    assert len(_owner_writes(module)) == 2
    assert len(_lock_uses(module)) == 1
    assert len(_direct_calls(module)) == 2
    assert len(_sdk_constants(module)) == 1
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
