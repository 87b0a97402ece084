"""How much sspi_import costs over hand-written ctypes, and how it scales with blob size.

Run from the repository root (the C stub is compiled with gcc at start)::

    python benchmarks/bench_import_export.py            # about half a minute
    python benchmarks/bench_import_export.py --quick    # a few seconds, for a smoke test

Prints a table, writes ``benchmarks/results/latest.json`` and draws
``docs/img/import_vs_blob_size.png`` (matplotlib; see ``benchmarks/requirements.txt``).
A script, never a test: timings do not belong in a pass/fail suite.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import pathlib
import sys
import time
import tracemalloc
from ctypes import POINTER, byref, c_int32, c_uint32, c_void_p
from typing import Any, Literal

from _common import (
    KIB,
    MIB,
    ROOT,
    Case,
    build_stub,
    machine,
    median,
    print_table,
    ratio,
    run_interleaved,
    size_label,
    timed,
    write_json,
)

import sspi_import
from stubs import SecBuffer, SecHandle, Stub

PACKAGE = "NTLM"
SECBUFFER_EMPTY = 0
TARGET_RATIO = 1.25  # export_context against careful ctypes (issue 12)
IMPORT_TARGET = 1.5  # ImportedContext()+close() against careful ctypes (issue 12)
ROUND_TRIP_TARGET = 1.35  # encrypt+decrypt at 64 B against sspilib's minimal loop
SIZE_TARGET = 1.10
BLOB_SIZES = (1 * KIB, 64 * KIB, 1 * MIB, 16 * MIB)
EXPORT_SIZES = (1 * KIB, 64 * KIB, 1 * MIB, 16 * MIB)
MESSAGE_SIZES = (64, 64 * KIB)


# The hand-written ctypes a careful user would write -----------------------------------


class RawSspi:
    """Prototypes declared once, as anyone would, on a private CDLL of the same file."""

    def __init__(self, path: pathlib.Path) -> None:
        lib = ctypes.CDLL(str(path))
        self.import_ = lib.ImportSecurityContextW
        self.import_.argtypes = [c_void_p, POINTER(SecBuffer), c_void_p, POINTER(SecHandle)]
        self.import_.restype = c_int32
        self.export = lib.ExportSecurityContext
        self.export.argtypes = [POINTER(SecHandle), c_uint32, POINTER(SecBuffer), POINTER(c_void_p)]
        self.export.restype = c_int32
        self.delete = lib.DeleteSecurityContext
        self.delete.argtypes = [POINTER(SecHandle)]
        self.delete.restype = c_int32
        self.free = lib.FreeContextBuffer
        self.free.argtypes = [c_void_p]
        self.free.restype = c_int32


def raw_import_close(raw: RawSspi, package: str, blob: bytes) -> Case:
    """Encode the name, build the SecBuffer over the blob, import, check, delete."""
    import_, delete = raw.import_, raw.delete

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            name = package.encode("utf-16-le") + b"\0\0"
            address = ctypes.cast(ctypes.c_char_p(blob), c_void_p)
            packed = SecBuffer(len(blob), SECBUFFER_EMPTY, address)
            handle = SecHandle()
            status = import_(name, byref(packed), None, byref(handle))
            if status < 0:
                raise OSError(f"ImportSecurityContextW failed: {status & 0xFFFFFFFF:#x}")
            status = delete(byref(handle))
            if status < 0:
                raise OSError(f"DeleteSecurityContext failed: {status & 0xFFFFFFFF:#x}")
        return time.perf_counter() - start

    return case


def raw_import_close_preencoded(raw: RawSspi, package: str, blob: bytes) -> Case:
    """The same with the name encoded once, outside the loop: the strictest baseline."""
    import_, delete = raw.import_, raw.delete
    name = package.encode("utf-16-le") + b"\0\0"

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            address = ctypes.cast(ctypes.c_char_p(blob), c_void_p)
            packed = SecBuffer(len(blob), SECBUFFER_EMPTY, address)
            handle = SecHandle()
            if import_(name, byref(packed), None, byref(handle)) < 0:
                raise OSError("ImportSecurityContextW failed")
            if delete(byref(handle)) < 0:
                raise OSError("DeleteSecurityContext failed")
        return time.perf_counter() - start

    return case


def raw_export(raw: RawSspi, handle: SecHandle) -> Case:
    """ExportSecurityContext, check, string_at, FreeContextBuffer."""
    export, free = raw.export, raw.free

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            packed = SecBuffer()
            token = c_void_p()
            status = export(byref(handle), 0, byref(packed), byref(token))
            if status < 0:
                raise OSError(f"ExportSecurityContext failed: {status & 0xFFFFFFFF:#x}")
            try:
                blob = ctypes.string_at(packed.pvBuffer, packed.cbBuffer)
            finally:
                free(packed.pvBuffer)
            del blob
        return time.perf_counter() - start

    return case


class CarefulSecBuffer(ctypes.Structure):
    """``SecBuffer`` with a ``c_char_p`` buffer field: a ``bytes`` blob is assigned as is."""

    _fields_ = [("cbBuffer", c_uint32), ("BufferType", c_uint32), ("pvBuffer", ctypes.c_char_p)]


class CarefulSspi(RawSspi):
    """What a skilled user writes: argtypes declared once, structures passed as they are.

    ctypes takes the address of a structure passed for a ``POINTER(T)`` argtype in C, so
    no ``byref()`` call is made per argument; the package name is encoded once. The
    prototypes are ``RawSspi``'s (on a CDLL of its own), but the import takes a
    ``SecBuffer`` whose buffer field is a ``c_char_p``, so a blob is assigned as it is.
    """

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.import_.argtypes = [
            c_void_p,
            POINTER(CarefulSecBuffer),
            c_void_p,
            POINTER(SecHandle),
        ]


def careful_import_close(careful: CarefulSspi, package: str, blob: bytes) -> Case:
    """Import and delete with every status checked; the name encoded once."""
    import_, delete = careful.import_, careful.delete
    name = package.encode("utf-16-le") + b"\0\0"
    length = len(blob)

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            packed = CarefulSecBuffer(length, SECBUFFER_EMPTY, blob)
            handle = SecHandle()
            if import_(name, packed, None, handle) < 0:
                raise OSError("ImportSecurityContextW failed")
            if delete(handle) < 0:
                raise OSError("DeleteSecurityContext failed")
        return time.perf_counter() - start

    return case


def careful_export(careful: CarefulSspi, handle: SecHandle) -> Case:
    """Export, check, copy the blob once, free the SSPI buffer, check."""
    export, free, string_at = careful.export, careful.free, ctypes.string_at

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            packed = SecBuffer()
            token = c_void_p()
            if export(handle, 0, packed, token) < 0:
                raise OSError("ExportSecurityContext failed")
            pointer = packed.pvBuffer
            try:
                blob = string_at(pointer, packed.cbBuffer)
            finally:
                if free(pointer) < 0:
                    raise OSError("FreeContextBuffer failed")
            del blob
        return time.perf_counter() - start

    return case


def bare_import_close(careful: CarefulSspi, package: str, blob: bytes) -> Case:
    """The limit: the two C calls with arguments built once, nothing checked."""
    import_, delete = careful.import_, careful.delete
    name = package.encode("utf-16-le") + b"\0\0"
    packed = CarefulSecBuffer(len(blob), SECBUFFER_EMPTY, blob)
    handle = SecHandle()

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            import_(name, packed, None, handle)
            delete(handle)
        return time.perf_counter() - start

    return case


def bare_export(careful: CarefulSspi, handle: SecHandle) -> Case:
    """The limit for an export: ExportSecurityContext and FreeContextBuffer, prebuilt."""
    export, free = careful.export, careful.free
    packed = SecBuffer()
    token = c_void_p()

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            export(handle, 0, packed, token)
            free(packed.pvBuffer)
        return time.perf_counter() - start

    return case


# The same jobs through sspi_import ------------------------------------------------------


def lib_import_close(package: str, blob: bytes | bytearray | memoryview) -> Case:
    imported_context = sspi_import.ImportedContext

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            context = imported_context(package, blob)
            context.close()
        return time.perf_counter() - start

    return case


def lib_export(context: sspi_import.ImportedContext) -> Case:
    export_context = sspi_import.export_context

    def case(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            exported = export_context(context)
            del exported
        return time.perf_counter() - start

    return case


# Sections -----------------------------------------------------------------------------


def bench_overhead(stub: Stub, raw: RawSspi, number: int, rounds: int) -> dict[str, Any]:
    blob = bytes(range(256)) * 4  # 1 KiB
    source = sspi_import.ImportedContext(PACKAGE, blob)
    handle = SecHandle(*stub.new_context())
    careful = CarefulSspi(stub.path)
    try:
        samples = run_interleaved(
            {
                "bare import+delete (limit)": bare_import_close(careful, PACKAGE, blob),
                "careful import+delete": careful_import_close(careful, PACKAGE, blob),
                "bare export+free (limit)": bare_export(careful, handle),
                "careful export": careful_export(careful, handle),
                "raw import+delete": raw_import_close(raw, PACKAGE, blob),
                "raw import+delete, name pre-encoded": raw_import_close_preencoded(
                    raw, PACKAGE, blob
                ),
                "ImportedContext()+close()": lib_import_close(PACKAGE, blob),
                "raw export": raw_export(raw, handle),
                "export_context()": lib_export(source),
            },
            number,
            rounds,
        )
    finally:
        source.close()
        raw.delete(byref(handle))
    result: dict[str, Any] = {
        "blob_bytes": len(blob),
        "number": number,
        "rounds": rounds,
        "seconds_per_call": {name: median(values) for name, values in samples.items()},
        "import_ratio": ratio(samples, "ImportedContext()+close()", "raw import+delete"),
        "import_ratio_vs_preencoded": ratio(
            samples, "ImportedContext()+close()", "raw import+delete, name pre-encoded"
        ),
        "export_ratio": ratio(samples, "export_context()", "raw export"),
        "import_ratio_vs_careful": ratio(
            samples, "ImportedContext()+close()", "careful import+delete"
        ),
        "export_ratio_vs_careful": ratio(samples, "export_context()", "careful export"),
        "target": TARGET_RATIO,
        "import_target": IMPORT_TARGET,
    }
    per_call = result["seconds_per_call"]
    result["ns_above_limit"] = {
        "import+close": (
            per_call["ImportedContext()+close()"] - per_call["bare import+delete (limit)"]
        )
        * 1e9,
        "export": (per_call["export_context()"] - per_call["bare export+free (limit)"]) * 1e9,
    }
    rows = [[name, f"{seconds * 1e6:.2f}"] for name, seconds in result["seconds_per_call"].items()]
    print_table("Per call, 1 KiB blob, C stub (median of rounds)", ["case", "µs/call"], rows)
    print_table(
        "Ratios (median of per-round ratios). Careful ctypes is the baseline of issue 12:"
        f" import <= {IMPORT_TARGET}x, export <= {TARGET_RATIO}x; 'raw' is the old"
        " baseline, which re-encodes the name and casts the blob per call",
        ["ratio", "value"],
        [
            [
                "ImportedContext+close / careful ctypes",
                f"{result['import_ratio_vs_careful']:.3f}x",
            ],
            ["export_context / careful ctypes", f"{result['export_ratio_vs_careful']:.3f}x"],
            [
                "ImportedContext+close above the bare-call limit",
                f"{result['ns_above_limit']['import+close']:.0f} ns",
            ],
            [
                "export_context above the bare-call limit",
                f"{result['ns_above_limit']['export']:.0f} ns",
            ],
            ["ImportedContext+close / raw", f"{result['import_ratio']:.3f}x"],
            [
                "ImportedContext+close / raw (name pre-encoded)",
                f"{result['import_ratio_vs_preencoded']:.3f}x",
            ],
            ["export_context / raw", f"{result['export_ratio']:.3f}x"],
        ],
    )
    return result


def _address(data: bytes | bytearray | memoryview) -> int:
    """Where the caller's bytes live, found without sspi_import."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), c_void_p).value or 0
    view = memoryview(data)
    if view.readonly:
        assert isinstance(view.obj, bytes)
        return _address(view.obj)
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


def _blob_kinds(size: int) -> dict[str, bytes | bytearray | memoryview]:
    data = bytes(size)
    return {
        "bytes": data,
        "bytearray": bytearray(size),
        "memoryview (of bytearray)": memoryview(bytearray(size)),
        "memoryview (read-only, of bytes)": memoryview(data),
    }


def bench_blob_sizes(stub: Stub, raw: RawSspi, number: int, rounds: int) -> dict[str, Any]:
    times: dict[str, dict[str, float]] = {}
    zero_copy: dict[str, dict[str, bool]] = {}
    # Every size and kind in one interleaved run: the growth ratio compares samples of
    # the same round, so load that drifts during the run does not pass for growth.
    cases: dict[tuple[str, str], Case] = {}
    for size in BLOB_SIZES:
        label = size_label(size)
        cases["raw (bytes)", label] = raw_import_close(raw, PACKAGE, bytes(size))
        for kind, data in _blob_kinds(size).items():
            cases[kind, label] = lib_import_close(PACKAGE, data)
            with sspi_import.ImportedContext(PACKAGE, data):
                zero_copy.setdefault(kind, {})[label] = stub.last_blob_ptr() == _address(data)
    samples = run_interleaved(cases, number, rounds)
    for (name, label), values in samples.items():
        times.setdefault(name, {})[label] = median(values)
    small, large = size_label(BLOB_SIZES[0]), size_label(BLOB_SIZES[-1])
    growth = {name: ratio(samples, (name, large), (name, small)) for name in times}
    header = ["blob", *(size_label(s) for s in BLOB_SIZES), f"{large}/{small}", "zero-copy"]
    rows = [
        [
            name,
            *(f"{by_size[size_label(s)] * 1e6:.2f}" for s in BLOB_SIZES),
            f"{growth[name]:.3f}x",
            "n/a" if name not in zero_copy else str(all(zero_copy[name].values())),
        ]
        for name, by_size in times.items()
    ]
    print_table(
        f"Import+close, µs/call against blob size (target {large}/{small} <= {SIZE_TARGET}x)",
        header,
        rows,
    )
    return {
        "sizes": [size_label(s) for s in BLOB_SIZES],
        "size_bytes": list(BLOB_SIZES),
        "seconds_per_call": times,
        "growth_largest_over_smallest": growth,
        "zero_copy": zero_copy,
        "target": SIZE_TARGET,
    }


def _export_peak(source: sspi_import.ImportedContext) -> tuple[int, int]:
    """(bytes allocated by Python during one export at peak, len(blob))."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        exported = sspi_import.export_context(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, len(exported.blob)


def bench_export_sizes(stub: Stub, raw: RawSspi, rounds: int) -> dict[str, Any]:
    source = sspi_import.ImportedContext(PACKAGE, b"context")
    handle = SecHandle(*stub.new_context())
    times: dict[str, dict[str, float]] = {}
    ratios: dict[str, float] = {}
    copies: dict[str, float] = {}
    try:
        for size in EXPORT_SIZES:
            label = size_label(size)
            stub.set_export_payload(bytes(size))
            number = max(20, min(20_000, (64 * MIB) // size))
            samples = run_interleaved(
                {"raw export": raw_export(raw, handle), "export_context()": lib_export(source)},
                number,
                rounds,
            )
            for name, values in samples.items():
                times.setdefault(name, {})[label] = median(values)
            ratios[label] = ratio(samples, "export_context()", "raw export")
            peak, length = _export_peak(source)
            copies[label] = peak / length
    finally:
        stub.set_export_payload(None)
        source.close()
        raw.delete(byref(handle))
    rows = [
        [
            size_label(s),
            f"{times['raw export'][size_label(s)] * 1e6:.2f}",
            f"{times['export_context()'][size_label(s)] * 1e6:.2f}",
            f"{ratios[size_label(s)]:.3f}x",
            f"{copies[size_label(s)]:.3f}",
        ]
        for s in EXPORT_SIZES
    ]
    print_table(
        "Export, µs/call against blob size (copies = peak Python allocation / blob size)",
        ["blob", "raw", "export_context", "ratio", "copies"],
        rows,
    )
    return {
        "sizes": [size_label(s) for s in EXPORT_SIZES],
        "size_bytes": list(EXPORT_SIZES),
        "seconds_per_call": times,
        "ratio": ratios,
        "peak_allocation_over_blob_size": copies,
    }


# Against sspilib (Cython) on sspi-rs ------------------------------------------------------


def _sspilib_pair() -> tuple[Any, Any, int]:
    import sspilib

    def credential(usage: Literal["initiate", "accept"]) -> Any:
        return sspilib.UserCredential(
            "user@DOMAIN.LOCAL", "Password01", protocol="NTLM", usage=usage
        )

    client = sspilib.ClientSecurityContext(
        credential=credential("initiate"), target_name="host/localhost"
    )
    server = sspilib.ServerSecurityContext(credential=credential("accept"))
    token = client.step(b"")
    while not (client.complete and server.complete):
        token = server.step(token)
        if client.complete:
            break
        token = client.step(token)
    trailer = sspilib.raw.query_context_attributes(
        client, sspilib.raw.SecPkgContextSizes
    ).security_trailer
    return client, server, int(trailer)


def sspilib_minimal_round_trip(client: Any, server: Any, trailer: int, message: bytes) -> Case:
    """sspilib.raw's minimal loop: two bytearrays and their descriptors, reused per call.

    The message is copied into the reused data buffer, encrypted and decrypted there in
    place, and compared: the least work a caller of sspilib.raw can do per message.
    """
    from sspilib import raw

    token_type, data_type = raw.SecBufferType.SECBUFFER_TOKEN, raw.SecBufferType.SECBUFFER_DATA
    signature, data = bytearray(trailer), bytearray(len(message))
    sealed = raw.SecBufferDesc(
        [raw.SecBuffer(signature, token_type), raw.SecBuffer(data, data_type)]
    )
    opened = raw.SecBufferDesc(
        [raw.SecBuffer(signature, token_type), raw.SecBuffer(data, data_type)]
    )

    def body() -> None:
        data[:] = message
        raw.encrypt_message(client, 0, sealed, 0)
        raw.decrypt_message(server, opened, 0)
        if data != message:
            raise AssertionError("sspilib round trip changed the message")

    return timed(body)


def sspilib_round_trip(client: Any, server: Any, trailer: int, message: bytes) -> Case:
    """EncryptMessage on the client, DecryptMessage on the server, with sspilib.raw."""
    from sspilib import raw

    token_type, data_type = raw.SecBufferType.SECBUFFER_TOKEN, raw.SecBufferType.SECBUFFER_DATA

    def body() -> None:
        signature, data = bytearray(trailer), bytearray(message)
        sealed = raw.SecBufferDesc(
            [raw.SecBuffer(signature, token_type), raw.SecBuffer(data, data_type)]
        )
        raw.encrypt_message(client, 0, sealed, 0)
        opened = raw.SecBufferDesc(
            [raw.SecBuffer(signature, token_type), raw.SecBuffer(data, data_type)]
        )
        raw.decrypt_message(server, opened, 0)
        if bytes(data) != message:
            raise AssertionError("sspilib round trip changed the message")

    return timed(body)


def sspilib_loopback() -> Case:
    """An NTLM handshake with sspilib on sspi-rs: credentials, both contexts, every step."""

    def body() -> None:
        client, server, _trailer = _sspilib_pair()
        del client, server  # sspilib frees its handles when the objects go

    return timed(body)


def lib_loopback() -> Case:
    """The same handshake through ``sspi_import.loopback``, both contexts closed after."""
    from sspi_import.credentials import Identity

    identity = Identity("user", "DOMAIN.LOCAL", "Password01")

    def body() -> None:
        client, server = sspi_import.loopback("NTLM", identity, "host/localhost")
        client.close()
        server.close()

    return timed(body)


def _security_context_api() -> tuple[Any, str | None]:
    """Issue 4's ``loopback`` and ``SecurityContext.encrypt/decrypt``, if they exist yet."""
    try:
        module = importlib.import_module("sspi_import.handshake")
    except ImportError:
        return None, "sspi_import.handshake does not exist yet (issue 4)"
    loopback = getattr(module, "loopback", None) or getattr(sspi_import, "loopback", None)
    context_class = getattr(module, "SecurityContext", None)
    if loopback is None or context_class is None:
        return None, "sspi_import.handshake has no loopback/SecurityContext yet (issue 4)"
    if not all(hasattr(context_class, name) for name in ("encrypt", "decrypt")):
        return None, "SecurityContext has no encrypt/decrypt yet (issue 4)"
    return loopback, None


def lib_round_trip(client: Any, server: Any, message: bytes) -> Case:
    def body() -> None:
        if server.decrypt(client.encrypt(message)) != message:
            raise AssertionError("sspi_import round trip changed the message")

    return timed(body)


def lib_round_trip_in_place(client: Any, server: Any, message: bytes) -> Case:
    """``encrypt_into`` a buffer reused from call to call, ``decrypt_in_place`` there.

    Step for step like the sspilib loop: one copy of the message into a writable buffer,
    both calls in place, ``bytes()`` of the plaintext to compare. The one difference is
    the buffer: sspilib's loop makes two bytearrays per call (its in-place calls need a
    fresh copy of the message each time); this one reuses its buffer, which is what
    ``encrypt_into`` is for.
    """
    out = bytearray(client.encrypted_size(len(message)))

    def body() -> None:
        length = client.encrypt_into(message, out)
        with memoryview(out) as whole, whole[:length] as sealed:
            plain = server.decrypt_in_place(sealed)
            if bytes(plain) != message:
                raise AssertionError("sspi_import in-place round trip changed the message")
            plain.release()

    return timed(body)


def lib_minimal_round_trip_in_place(client: Any, server: Any, message: bytes) -> Case:
    """sspilib.raw's minimal loop, step for step, with ``encrypt_into``/``decrypt_in_place``.

    One buffer reused from call to call; the message copied into it once (by
    ``encrypt_into``, as ``data[:] = message`` there), sealed and opened in place, and the
    plaintext compared where it is (``bytearray.startswith``: a ``memcmp``, as the minimal
    loop's ``data != message``), never copied out. The bytes API (``encrypt``/``decrypt``)
    copies once more by its nature: it returns new ``bytes`` both ways.
    """
    out = bytearray(client.encrypted_size(len(message)))
    whole = memoryview(out)  # held for the case's life: out is never resized
    start = 4 + client.sizes().security_trailer  # where the plaintext is (NTLM: no padding)

    def body() -> None:
        with whole[: client.encrypt_into(message, out)] as sealed:
            plain = server.decrypt_in_place(sealed)
            if len(plain) != len(message) or not out.startswith(message, start):
                raise AssertionError("sspi_import in-place round trip changed the message")
            plain.release()

    return timed(body)


def bench_sspilib(number: int, rounds: int) -> dict[str, Any]:
    try:
        path = sspi_import.find_sspi_rs()
        import sspilib  # noqa: F401 - only to know it is there
    except (ImportError, sspi_import.SspiUnavailableError) as exc:
        print(f"\nsspilib comparison skipped: {exc}")
        return {"skipped": str(exc)}
    loopback, missing = _security_context_api()
    if missing is not None:
        print(f"\nsspilib comparison skipped, not measured: {missing}")
        return {"skipped": missing}
    sspi_import.use_library(path)
    from sspi_import.credentials import Identity

    client, server = loopback("NTLM", Identity("user", "DOMAIN.LOCAL", "Password01"))
    theirs_client, theirs_server, trailer = _sspilib_pair()
    results: dict[str, Any] = {
        "library": str(path),
        "seconds_per_call": {},
        "ratio": {},
        "ratio_in_place": {},
    }
    try:
        for size in MESSAGE_SIZES:
            message = bytes(range(256)) * (size // 256) if size >= 256 else bytes(size)
            count = number if size < KIB else max(50, number // 20)
            samples = run_interleaved(
                {
                    "sspilib.raw": sspilib_round_trip(
                        theirs_client, theirs_server, trailer, message
                    ),
                    "sspilib.raw minimal": sspilib_minimal_round_trip(
                        theirs_client, theirs_server, trailer, message
                    ),
                    "sspi_import": lib_round_trip(client, server, message),
                    "sspi_import in place": lib_round_trip_in_place(client, server, message),
                },
                count,
                rounds,
            )
            label = size_label(size)
            results["seconds_per_call"][label] = {k: median(v) for k, v in samples.items()}
            results["ratio"][label] = ratio(samples, "sspi_import", "sspilib.raw")
            results.setdefault("ratio_vs_minimal", {})[label] = ratio(
                samples, "sspi_import", "sspilib.raw minimal"
            )
            results["ratio_in_place"][label] = ratio(samples, "sspi_import in place", "sspilib.raw")
    finally:
        for context in (client, server):
            close = getattr(context, "close", None)
            if close is not None:
                close()
    rows = [
        [
            label,
            f"{by_name['sspilib.raw minimal'] * 1e6:.2f}",
            f"{by_name['sspilib.raw'] * 1e6:.2f}",
            f"{by_name['sspi_import'] * 1e6:.2f}",
            f"{results['ratio_vs_minimal'][label]:.3f}x",
            f"{results['ratio'][label]:.3f}x",
            f"{by_name['sspi_import in place'] * 1e6:.2f}",
            f"{results['ratio_in_place'][label]:.3f}x",
        ]
        for label, by_name in results["seconds_per_call"].items()
    ]
    print_table(
        f"Encrypt+decrypt round trip on sspi-rs, µs/call (target at 64 B: <= {ROUND_TRIP_TARGET}x"
        " sspilib's minimal loop; ratios are sspi_import / each sspilib loop)",
        [
            "message",
            "sspilib minimal",
            "sspilib",
            "sspi_import",
            "/minimal",
            "/sspilib",
            "in place",
            "/sspilib",
        ],
        rows,
    )
    return results


# Output ---------------------------------------------------------------------------------


def draw_chart(path: pathlib.Path, blobs: dict[str, Any], exports: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, by_size in blobs["seconds_per_call"].items():
        style = "--" if name.startswith("raw") else "-"
        values = [by_size[label] * 1e6 for label in blobs["sizes"]]
        left.plot(blobs["size_bytes"], values, style, marker="o", label=name)
    left.set(
        xscale="log",
        xlabel="blob size (bytes)",
        ylabel="µs per import + close",
        title="ImportedContext: no copy, flat in blob size",
    )
    left.set_ylim(bottom=0)
    left.legend(fontsize="small")
    for name, by_size in exports["seconds_per_call"].items():
        style = "--" if name.startswith("raw") else "-"
        values = [by_size[label] * 1e6 for label in exports["sizes"]]
        right.plot(exports["size_bytes"], values, style, marker="o", label=name)
    right.set(
        xscale="log",
        yscale="log",
        xlabel="blob size (bytes)",
        ylabel="µs per export",
        title="export_context: one copy, like string_at",
    )
    right.legend(fontsize="small")
    figure.suptitle("C stub SSPI library; median of interleaved rounds (2-core, noisy machine)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--number", type=int, default=20_000, help="calls per case per round")
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer calls")
    parser.add_argument(
        "--json", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "latest.json"
    )
    parser.add_argument(
        "--chart", type=pathlib.Path, default=ROOT / "docs" / "img" / "import_vs_blob_size.png"
    )
    parser.add_argument("--no-chart", action="store_true", help="skip matplotlib")
    args = parser.parse_args(argv)
    rounds, number = (3, 2_000) if args.quick else (args.rounds, args.number)

    stub = build_stub()
    stub.reset()
    sspi_import.use_library(stub.path)
    raw = RawSspi(stub.path)
    overhead = bench_overhead(stub, raw, number, rounds)
    blobs = bench_blob_sizes(stub, raw, max(200, number // 4), rounds)
    exports = bench_export_sizes(stub, raw, rounds)
    leaks = {
        "live_contexts": stub.live_contexts(),
        "live_buffers": stub.live_buffers(),
        "live_tokens": stub.live_tokens(),
    }
    sspilib_results = bench_sspilib(max(200, number // 4), rounds)
    sspi_import.use_library(None)

    results = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "overhead": overhead,
        "import_vs_blob_size": blobs,
        "export_vs_blob_size": exports,
        "sspilib_round_trip": sspilib_results,
        "stub_left_over": leaks,
    }
    write_json(args.json, results)
    print(f"\nwrote {args.json}")
    if not args.no_chart:
        draw_chart(args.chart, blobs, exports)
        print(f"wrote {args.chart}")
    if any(leaks.values()):
        print(f"LEAK: the stub still holds {leaks}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
