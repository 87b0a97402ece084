"""The CPython layout tricks of ``sspi_import._cpython``: probe, fallback, and the fence."""

from __future__ import annotations

import ast
import ctypes
import pathlib

import pytest

from sspi_import import _cpython

SRC = pathlib.Path(_cpython.__file__).parent


def _address(data: bytes) -> int:
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def test_the_probe_finds_where_bytes_keep_their_data() -> None:
    assert _cpython.BYTES_OFFSET is not None  # CPython is what the suite runs on
    for sample in (b"ab", bytes(range(256)), b"\0" * 4096):
        assert _cpython.bytes_address(sample) == _address(sample)


def test_without_the_offset_addresses_come_from_ctypes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cpython, "BYTES_OFFSET", None)
    sample = b"fallback"
    assert _cpython.bytes_address(sample) == _address(sample)
    assert _cpython.fresh_bytes(b"ab", b"cd") is None
    assert _cpython.fresh_slices(b"abcdef", 1, 3, 5) is None
    assert _cpython.fresh_copy(_address(sample), 4) is None


def test_fresh_objects_are_new_and_addressed_exactly() -> None:
    head, tail = b"head", b"tail"
    made = _cpython.fresh_bytes(head, tail)
    assert made is not None
    value, at = made
    assert value == b"headtail"
    assert value is not head
    assert value is not tail
    assert at == _address(value)
    source = b"0123456789"
    sliced = _cpython.fresh_slices(source, 2, 6, 9)
    assert sliced is not None
    first, first_at, second, second_at = sliced
    assert (first, second) == (b"2345", b"678")
    assert (first_at, second_at) == (_address(first), _address(second))
    copied = _cpython.fresh_copy(_address(source) + 1, 3)
    assert copied is not None
    assert copied[0] == b"123"
    assert copied[1] == _address(copied[0])


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (3, 4), (5, 5), (0, 10), (0, 11)])
def test_slices_that_could_be_shared_objects_are_refused(start: int, stop: int) -> None:
    # 0- and 1-byte objects are CPython's singletons; a whole slice is the source itself.
    assert _cpython.fresh_slices(b"0123456789", start, stop, stop + 2) is None


@pytest.mark.parametrize("stop", [4, 5])
def test_a_short_second_slice_refuses_both(stop: int) -> None:
    assert _cpython.fresh_slices(b"0123456789", 0, 4, stop) is None


def test_short_copies_are_refused() -> None:
    assert _cpython.fresh_copy(_address(b"abc"), 1) is None


def test_no_other_module_reads_object_memory_through_id() -> None:
    """The fence: an object's address from ``id()`` (or its size) is used in _cpython.py only.

    Other modules read C memory SSPI handed out (``from_address`` on a pointer it
    returned); none computes where a Python object keeps its data.
    """
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "_cpython.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "id":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} id()")
            if isinstance(node, ast.Attribute) and node.attr in {"getsizeof", "__basicsize__"}:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {node.attr}")
    assert not offenders, offenders
