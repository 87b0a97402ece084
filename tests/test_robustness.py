"""Robustness against the C stub: soak (memory flat, nothing left live), threads, copies.

The default run is sized for seconds; ``pytest --soak`` runs the full size (1,000,000
import/close cycles and 100,000 contexts left to the finalizer).
"""

from __future__ import annotations

import ctypes
import gc
import mmap
import threading
import tracemalloc
import warnings
from typing import Any

import pytest

import sspi_import
from sspi_import import ImportedContext, export_context
from stubs import Stub

WARM_UP = 2_000
RSS_LIMIT = 2 * 1024 * 1024
THREADS = 8


def _sizes(config: pytest.Config) -> tuple[int, int]:
    """(import/close cycles, contexts left to the finalizer)."""
    if config.getoption("--soak"):
        return 1_000_000, 100_000
    return 20_000, 5_000


def _rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        pytest.skip("no /proc/self/statm: resident memory cannot be read on this platform")
    return resident_pages * mmap.PAGESIZE


def _assert_nothing_live(stub: Stub) -> None:
    gc.collect()
    assert stub.live_contexts() == 0
    assert stub.live_buffers() == 0
    assert stub.live_tokens() == 0
    assert stub.bad_frees() == 0
    assert stub.bad_closes() == 0


# Soak ------------------------------------------------------------------------------


def test_import_close_cycles_keep_memory_flat(stub: Stub, pytestconfig: pytest.Config) -> None:
    cycles, _ = _sizes(pytestconfig)
    blob = bytes(range(256)) * 4
    for _ in range(WARM_UP):
        ImportedContext("NTLM", blob).close()
    gc.collect()
    before = _rss()
    for _ in range(cycles):
        with ImportedContext("NTLM", blob):
            pass
    gc.collect()
    growth = _rss() - before
    assert growth < RSS_LIMIT, f"RSS grew by {growth} bytes over {cycles} cycles"
    assert stub.calls("ImportSecurityContextW") == WARM_UP + cycles
    assert stub.calls("DeleteSecurityContext") == WARM_UP + cycles
    _assert_nothing_live(stub)


def test_export_cycles_keep_memory_flat(stub: Stub, pytestconfig: pytest.Config) -> None:
    cycles, _ = _sizes(pytestconfig)
    cycles //= 4
    stub.set_export_token(0x1234)
    with ImportedContext("NTLM", b"source") as source:
        for _ in range(WARM_UP):
            export_context(source).close()
        gc.collect()
        before = _rss()
        for _ in range(cycles):
            with export_context(source) as exported:
                assert exported.token == 0x1234
        gc.collect()
        growth = _rss() - before
    assert growth < RSS_LIMIT, f"RSS grew by {growth} bytes over {cycles} exports"
    assert stub.calls("FreeContextBuffer") == WARM_UP + cycles
    assert stub.calls("CloseHandle") == WARM_UP + cycles
    _assert_nothing_live(stub)


def test_contexts_left_to_the_finalizer_are_all_freed(
    stub: Stub, pytestconfig: pytest.Config
) -> None:
    _, leftovers = _sizes(pytestconfig)
    blob = b"left to the finalizer"
    seen: list[int] = [0]
    kinds: set[type[Warning]] = set()

    def count(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        seen[0] += 1
        kinds.add(category)

    with warnings.catch_warnings():
        # Deliberate: every context below is dropped unclosed, and each must warn.
        warnings.simplefilter("always", ResourceWarning)
        warnings.showwarning = count
        for _ in range(WARM_UP):
            ImportedContext("NTLM", blob)
        gc.collect()
        before = _rss()
        for _ in range(leftovers):
            ImportedContext("NTLM", blob)  # dropped at once: the finalizer deletes it
        gc.collect()
        growth = _rss() - before
    assert seen[0] == WARM_UP + leftovers
    assert kinds == {ResourceWarning}
    assert growth < RSS_LIMIT, f"RSS grew by {growth} bytes over {leftovers} finalized contexts"
    assert stub.calls("DeleteSecurityContext") == WARM_UP + leftovers
    _assert_nothing_live(stub)


def test_one_unclosed_context_warns_and_is_still_deleted(stub: Stub) -> None:
    with pytest.warns(ResourceWarning, match="unclosed"):
        ImportedContext("NTLM", b"blob")  # dropped at once, unclosed
    assert stub.calls("DeleteSecurityContext") == 1
    _assert_nothing_live(stub)


# Threads ---------------------------------------------------------------------------


def _run_threads(target: Any, count: int = THREADS) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a thread hung"
    return errors


def test_threads_importing_and_closing(stub: Stub) -> None:
    per_thread = 2_000

    def work() -> None:
        for i in range(per_thread):
            context = ImportedContext("NTLM", i.to_bytes(4, "little") + b"blob")
            if i % 3 == 0:
                export_context(context).close()
            context.close()

    assert _run_threads(work) == []
    assert stub.calls("ImportSecurityContextW") == THREADS * per_thread
    assert stub.calls("DeleteSecurityContext") == THREADS * per_thread
    _assert_nothing_live(stub)


def test_threads_closing_the_same_context_delete_it_once(stub: Stub) -> None:
    rounds = 200
    for _ in range(rounds):
        context = ImportedContext("NTLM", b"shared")
        barrier = threading.Barrier(THREADS)

        def close(context: ImportedContext = context, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            context.close()
            assert context.closed

        assert _run_threads(close) == []
    assert stub.calls("DeleteSecurityContext") == rounds
    _assert_nothing_live(stub)


def test_threads_closing_and_consuming_export_at_once(stub: Stub) -> None:
    """close() in 7 threads and a DELETE_OLD export in one: one owner frees the handle."""
    rounds = 100
    exported: list[sspi_import.ExportedContext] = []
    lock = threading.Lock()
    started = [0]
    for _ in range(rounds):
        context = ImportedContext("NTLM", b"shared")
        barrier = threading.Barrier(THREADS)
        started[0] = 0

        def act(context: ImportedContext = context, barrier: threading.Barrier = barrier) -> None:
            with lock:
                started[0] += 1
                exporter = started[0] == 1
            barrier.wait()
            if not exporter:
                context.close()
                return
            try:
                result = export_context(context, sspi_import.ExportFlags.DELETE_OLD)
            except ValueError:
                return  # a close() won: the context was already closed
            with lock:
                exported.append(result)

        assert _run_threads(act) == []
        assert context.closed
    deletes = stub.calls("DeleteSecurityContext")
    consumed = len(exported)
    assert deletes + consumed == rounds  # each handle freed exactly once, by one side
    for item in exported:
        item.close()
    _assert_nothing_live(stub)


# Copies ----------------------------------------------------------------------------


def _address(buffer: Any) -> int:
    view = memoryview(buffer)
    if view.readonly:
        obj = view.obj
        assert isinstance(obj, bytes)
        return ctypes.cast(ctypes.c_char_p(obj), ctypes.c_void_p).value or 0
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda n: bytes(n), id="bytes"),
        pytest.param(lambda n: bytearray(n), id="bytearray"),
        pytest.param(lambda n: memoryview(bytearray(n)), id="memoryview"),
        pytest.param(lambda n: memoryview(bytes(n)), id="readonly-memoryview"),
    ],
)
@pytest.mark.parametrize("size", [1, 4096, 16 * 1024 * 1024])
def test_import_reads_the_callers_buffer_in_place(stub: Stub, make: Any, size: int) -> None:
    data = make(size)
    with ImportedContext("NTLM", data):
        assert stub.last_blob_ptr() == _address(data)
        assert stub.last_blob_len() == size


def test_import_reads_an_mmap_in_place(stub: Stub) -> None:
    with mmap.mmap(-1, 1 << 20) as mapped:
        mapped[:4] = b"mmap"
        view = memoryview(mapped)
        try:
            with ImportedContext("NTLM", view):
                assert stub.last_blob_ptr() == _address(view)
                assert stub.last_blob_head()[:4] == b"mmap"
        finally:
            view.release()


def test_a_non_contiguous_blob_is_copied_once_and_still_correct(stub: Stub) -> None:
    data = bytearray(range(200))
    view = memoryview(data)[::2]
    with ImportedContext("NTLM", view):
        assert stub.last_blob_len() == 100
        assert stub.last_blob_head() == bytes(data[::2])[:64]
        assert stub.last_blob_ptr() != _address(data)


def test_export_makes_exactly_one_copy(stub: Stub) -> None:
    size = 8 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    stub.set_export_payload(payload)
    with ImportedContext("NTLM", b"source") as source:
        export_context(source).close()  # warm: prototypes bound, nothing lazily allocated
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            exported = export_context(source)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    with exported:
        assert exported.blob == payload
        assert exported.blob is exported.blob  # stored, not rebuilt per access
    # The stub's malloc'd buffer is not traced; the one Python copy is. Two copies
    # would show a peak of at least 2 * size.
    assert size <= peak < size * 1.25, f"peak {peak} for a {size}-byte blob"
    _assert_nothing_live(stub)
