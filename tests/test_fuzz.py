"""Property tests over every public entry point of the core, against the C stub.

Whatever the input, a call either works or raises one of the documented exceptions
(``TypeError``, ``ValueError``, an ``SspiError`` subclass), and never leaves a context,
buffer or token live. Bounded: about 200 examples per property, no deadline.
"""

from __future__ import annotations

import gc
import mmap
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sspi_import
from sspi_import import (
    ExportedContext,
    ExportFlags,
    ImportedContext,
    SspiError,
    error_from_status,
    explain,
    export_context,
    status_info,
)
from sspi_import._raw.structs import SecHandle
from stubs import Stub

DOCUMENTED = (TypeError, ValueError, SspiError)
BOUNDED = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INT32 = st.integers(min_value=-(2**31), max_value=2**32 - 1)
ANY_INT = st.one_of(INT32, st.integers(), st.integers(min_value=2**60, max_value=2**70))
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 255), max_size=4),
    st.complex_numbers(),
)


def _blobs() -> st.SearchStrategy[Any]:
    data = st.binary(max_size=300)
    return st.one_of(
        data,
        data.map(bytearray),
        data.map(lambda b: memoryview(b)),
        data.map(lambda b: memoryview(bytearray(b))),
        data.map(lambda b: memoryview(b)[1::2]),  # non-contiguous
        data.map(lambda b: memoryview(b)[1:]),  # read-only part of an object
        st.binary(min_size=16, max_size=16).map(lambda b: memoryview(b).cast("I", [2, 2])),
        st.binary(min_size=4, max_size=64).map(
            lambda b: memoryview(bytearray(b[: len(b) // 4 * 4])).cast("i")
        ),
        ANY_INT,
        JUNK,
    )


def _packages() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["NTLM", "Kerberos", "Negotiate", "Unknown", "", "a\0b", "\ud800"]),
        st.text(max_size=20),
        st.binary(max_size=8),
        ANY_INT,
        JUNK,
    )


def _assert_nothing_live(stub: Stub) -> None:
    if stub.live_contexts() or stub.live_buffers() or stub.live_tokens():
        gc.collect()  # only then: a full collection per example would dominate the run
    assert stub.live_contexts() == 0
    assert stub.live_buffers() == 0
    assert stub.live_tokens() == 0
    assert stub.bad_frees() == 0
    assert stub.bad_closes() == 0


@BOUNDED
@given(
    package=_packages(),
    blob=_blobs(),
    token=st.one_of(st.none(), ANY_INT, JUNK),
    buffer_type=st.one_of(ANY_INT, JUNK),
)
def test_imported_context_any_input(
    stub: Stub, package: Any, blob: Any, token: Any, buffer_type: Any
) -> None:
    try:
        context = ImportedContext(package, blob, token, buffer_type=buffer_type)
    except DOCUMENTED:
        pass
    else:
        assert not context.closed
        assert isinstance(repr(context), str)
        context.close()
        assert context.closed
        context.close()
    _assert_nothing_live(stub)


@BOUNDED
@given(status=INT32.filter(lambda s: s & 0x8000_0000), times=st.integers(1, 3))
def test_a_failing_import_raises_its_sspi_error_and_leaks_nothing(
    stub: Stub, status: int, times: int
) -> None:
    stub.fail("ImportSecurityContextW", status, times)
    for _ in range(times):
        with pytest.raises(SspiError) as caught:
            ImportedContext("NTLM", b"blob")
        assert caught.value.status == status & 0xFFFF_FFFF
        assert caught.value.function == "ImportSecurityContextW"
    _assert_nothing_live(stub)


def _huge_mmap(size: int) -> mmap.mmap:
    try:
        return mmap.mmap(-1, size)  # anonymous: no memory used until a page is touched
    except (OSError, OverflowError, ValueError, MemoryError) as exc:
        pytest.skip(f"cannot map {size} bytes of address space here: {exc}")


def test_a_huge_memoryview_is_refused_without_being_touched(stub: Stub) -> None:
    with _huge_mmap(2**32 + 1) as mapped:
        view = memoryview(mapped)
        try:
            with pytest.raises(ValueError, match="at most"):
                ImportedContext("NTLM", view)
            with pytest.raises(ValueError, match="at most"):
                ImportedContext("NTLM", view[: 2**32])
            with pytest.raises(ValueError, match="at most"):
                ImportedContext("NTLM", mapped)  # type: ignore[arg-type]
        finally:
            view.release()
    assert stub.calls("ImportSecurityContextW") == 0
    _assert_nothing_live(stub)


def test_the_largest_blob_sspi_takes_is_passed_in_place(stub: Stub) -> None:
    with _huge_mmap(2**32 - 1) as mapped:
        view = memoryview(mapped)
        try:
            with ImportedContext("NTLM", view):
                assert stub.last_blob_len() == 2**32 - 1
        finally:
            view.release()
    _assert_nothing_live(stub)


def _contexts(stub: Stub) -> st.SearchStrategy[Any]:
    words = st.one_of(ANY_INT, st.booleans(), st.floats())
    return st.one_of(
        st.just("live"),
        st.just("closed"),
        st.tuples(words, words),
        st.tuples(ANY_INT, ANY_INT, ANY_INT),
        st.tuples(),
        st.builds(SecHandle, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
        JUNK,
        ANY_INT,
    )


@BOUNDED
@given(
    choice=st.data(),
    flags=st.one_of(st.sampled_from(list(ExportFlags)), ANY_INT, JUNK),
    token=st.sampled_from([0, 0x4242]),
)
def test_export_context_any_input(stub: Stub, choice: Any, flags: Any, token: int) -> None:
    stub.set_export_token(token)
    target = choice.draw(_contexts(stub))
    owned: ImportedContext | None = None
    if target in ("live", "closed"):
        owned = ImportedContext("NTLM", b"source")
        if target == "closed":
            owned.close()
        target = owned
    try:
        exported = export_context(target, flags)
    except DOCUMENTED:
        pass
    else:
        assert isinstance(exported, ExportedContext)
        assert isinstance(exported.blob, bytes)
        assert exported.blob
        assert exported.token == (token or None)
        exported.close()
        assert exported.token is None
    if owned is not None:
        owned.close()
    _assert_nothing_live(stub)


@BOUNDED
@given(
    package=st.one_of(st.none(), _packages()),
    blob=st.one_of(st.binary(max_size=40), _blobs()),
    buffer_type=st.one_of(ANY_INT, JUNK),
    token=st.one_of(st.none(), ANY_INT, JUNK),
)
def test_exported_context_constructor_any_input(
    package: Any, blob: Any, buffer_type: Any, token: Any
) -> None:
    try:
        exported = ExportedContext(package, blob, buffer_type, token)
    except DOCUMENTED:
        return
    except sspi_import.SspiUnavailableError:
        return  # a token with no SSPI library loaded to close it with
    detached = exported.detach() if exported.token is not None else None
    assert detached is None or isinstance(detached, int)
    assert exported.closed


# Status codes ----------------------------------------------------------------------


@BOUNDED
@given(code=INT32)
def test_explain_and_error_from_status_accept_every_32_bit_value(code: int) -> None:
    unsigned = code & 0xFFFF_FFFF
    text = explain(code)
    assert f"0x{unsigned:08X}" in text
    assert explain(unsigned) == text
    assert explain(str(code)) == text
    assert explain(f"0x{unsigned:08x}") == text
    error = error_from_status(code, "SomeCall")
    assert isinstance(error, SspiError)
    assert isinstance(error, OSError)
    assert error.status == unsigned
    assert error.winerror == (unsigned - 2**32 if unsigned & 0x8000_0000 else unsigned)
    assert error.function == "SomeCall"
    assert type(error_from_status(unsigned)) is type(error)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    info = status_info(code)
    assert info is None or (info.status == unsigned and info.symbol == error.symbol)


@BOUNDED
@given(code=st.one_of(st.integers(max_value=-(2**31) - 1), st.integers(min_value=2**32)))
def test_codes_outside_32_bits_are_value_errors(code: int) -> None:
    for function in (explain, status_info, error_from_status):
        with pytest.raises(ValueError, match="32-bit"):
            function(code)


@BOUNDED
@given(code=st.one_of(st.text(max_size=30), JUNK, st.binary(max_size=8)))
def test_status_lookups_take_any_object(code: Any) -> None:
    for function in (explain, status_info):
        try:
            result = function(code)
        except DOCUMENTED:
            continue
        assert result is None or isinstance(result, (str, tuple))
    try:
        error = error_from_status(code)
    except DOCUMENTED:
        return
    assume(isinstance(code, int))
    assert isinstance(error, SspiError)
