"""Handles from elsewhere: pywin32's integer form for both pointer widths, raw pairs."""

from __future__ import annotations

import ctypes
import struct

import pytest

import sspi_import
from sspi_import._cpython import is_pywin32_handle, peek_pywin32
from sspi_import._foreign import handle_from_int, handle_to_int, raw_pair
from sspi_import._raw.structs import SecHandle
from sspi_import.testing import FakeSspi

PAIRS = [(0, 0), (1, 2), (0x1234, 0x5EC5EC), (0xFFFF_FFFE, 0xFFFF_FFFE), (0x7FFF_FFFF, 0)]
WIDE_PAIRS = [(0x1122334455667788, 0x99AABBCCDDEEFF00), ((1 << 64) - 2, 1)]


@pytest.mark.parametrize("pair", PAIRS + WIDE_PAIRS)
def test_int_form_matches_sechandle_bytes_on_64_bit(pair: tuple[int, int]) -> None:
    # pywin32: _PyLong_FromByteArray(&handle, sizeof(handle), little_endian=1, signed=0)
    as_int = int.from_bytes(struct.pack("<QQ", *pair), "little")
    assert handle_from_int(as_int, pointer_bytes=8) == pair
    assert handle_to_int(*pair, pointer_bytes=8) == as_int


@pytest.mark.parametrize("pair", PAIRS)
def test_int_form_matches_sechandle_bytes_on_32_bit(pair: tuple[int, int]) -> None:
    as_int = int.from_bytes(struct.pack("<II", *pair), "little")
    assert as_int < 1 << 64
    assert handle_from_int(as_int, pointer_bytes=4) == pair
    assert handle_to_int(*pair, pointer_bytes=4) == as_int


@pytest.mark.parametrize("pair", PAIRS)
def test_int_form_matches_this_interpreters_ctypes_sechandle(pair: tuple[int, int]) -> None:
    as_int = int.from_bytes(bytes(SecHandle(*pair)), "little")
    assert handle_from_int(as_int) == pair


def test_minus_one_is_pywin32s_invalid_handle() -> None:
    with pytest.raises(ValueError, match="already detached or deleted"):
        handle_from_int(-1)


@pytest.mark.parametrize(
    ("value", "width"),
    [(-2, 8), (1 << 128, 8), (1 << 64, 4), (-(1 << 70), 8)],
)
def test_out_of_range_ints_are_refused(value: int, width: int) -> None:
    with pytest.raises(ValueError, match="SecHandle integer"):
        handle_from_int(value, pointer_bytes=width)


def test_all_ones_handle_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid"):
        handle_from_int((1 << 128) - 1, pointer_bytes=8)
    with pytest.raises(ValueError, match="invalid"):
        handle_from_int((1 << 64) - 1, pointer_bytes=4)


@pytest.mark.parametrize("width", [4, 8])
@pytest.mark.parametrize("which", ["lower", "upper"])
def test_either_word_all_ones_is_invalid(width: int, which: str) -> None:
    # sspi.h SecIsValidHandle: invalid when either word is (ULONG_PTR)-1.
    ones = (1 << (8 * width)) - 1
    pair = (ones, 5) if which == "lower" else (5, ones)
    with pytest.raises(ValueError, match="all ones"):
        raw_pair(pair, pointer_bytes=width)
    with pytest.raises(ValueError, match="all ones"):
        handle_from_int(pair[0] | pair[1] << (8 * width), pointer_bytes=width)
    if width == ctypes.sizeof(ctypes.c_void_p):
        with FakeSspi(), pytest.raises(ValueError, match="all ones"):
            sspi_import.adopt_context(pair)


@pytest.mark.parametrize("bad", [1.0, "5", True, None, b"\x01"])
def test_non_int_forms_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        handle_from_int(bad)


@pytest.mark.parametrize(
    ("value", "exc"),
    [((1,), TypeError), ((1, 2, 3), TypeError), ((1, "2"), TypeError), ((-1, 0), ValueError)],
)
def test_raw_pair_validation(value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        raw_pair(value)


def test_pywin32_detection_is_by_shape() -> None:
    class PyCtxtHandle:  # the name and a Detach method: what pywin32's type has
        def Detach(self) -> int:  # noqa: N802 - pywin32's name
            return -1

    assert is_pywin32_handle(PyCtxtHandle())
    assert not is_pywin32_handle((1, 2))
    assert not is_pywin32_handle(SecHandle())


def test_peek_refuses_an_unknown_layout() -> None:
    class PyCtxtHandle:
        def Detach(self) -> int:  # noqa: N802 - pywin32's name
            return -1

    with pytest.raises(TypeError, match="adopt_context"):
        peek_pywin32(PyCtxtHandle())


def test_pointer_width_is_the_interpreters() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        handle_from_int(1 << (16 * ctypes.sizeof(ctypes.c_void_p)))
