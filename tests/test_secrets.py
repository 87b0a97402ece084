"""No blob bytes, session key or password in any repr, str, exception or log line.

A recognizable secret is planted in import blobs and in the stub's export payload; every
text the library produces around them (reprs, strs, exception messages and args,
pickled errors, warnings, log records) is searched for it, raw and as hex and base64.
"""

from __future__ import annotations

import base64
import gc
import logging
import pickle
import warnings
from collections.abc import Iterable

import pytest

import sspi_import
from sspi_import import ExportedContext, ExportFlags, ImportedContext, SspiError, export_context
from stubs import Stub

SECRET = b"\x8f\x13SESSION-KEY-7d41e2c9-hunter2\x00\xfe"
PASSWORD = "Pa55w0rd-9f2c1d-hunter2"


def _forms(secret: bytes) -> list[str]:
    """The ways a secret could show up in text."""
    core = secret.strip(b"\x00\x8f\x13\xfe")
    return [
        core.decode("ascii"),
        secret.hex(),
        secret.hex().upper(),
        core.hex(),
        base64.b64encode(secret).decode("ascii"),
        base64.b64encode(core).decode("ascii"),
        repr(secret)[2:-1],
        "hunter2",
    ]


def _texts(objects: Iterable[object]) -> list[str]:
    out: list[str] = []
    for obj in objects:
        out += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            out += [repr(arg) for arg in obj.args]
            out.append(repr(pickle.loads(pickle.dumps(obj))))
            if obj.__cause__ is not None or obj.__context__ is not None:
                out += _texts([c for c in (obj.__cause__, obj.__context__) if c is not None])
    return out


def _assert_clean(texts: Iterable[str], secret: bytes = SECRET) -> None:
    texts = list(texts)
    assert texts
    for text in texts:
        for form in _forms(secret):
            assert form not in text, f"secret form {form!r} leaked into {text!r}"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _blobs() -> list[bytes | bytearray | memoryview]:
    return [SECRET, bytearray(SECRET), memoryview(SECRET), memoryview(bytearray(SECRET))[::1]]


def test_imported_context_texts_hold_no_blob_bytes(
    stub: Stub, logs: pytest.LogCaptureFixture
) -> None:
    produced: list[object] = []
    for blob in _blobs():
        context = ImportedContext("NTLM", blob)
        assert stub.last_blob_head() == SECRET  # the secret did reach SSPI
        produced.append(context)
        context.close()
        produced.append(context)
    _assert_clean(_texts(produced))
    _assert_clean([record.getMessage() for record in logs.records] or ["(no log)"])


@pytest.mark.parametrize("status", [0x80090308, 0x80090305, 0x8009035D, 0x80090300, 0xC0000001])
def test_failed_imports_do_not_echo_the_blob(
    stub: Stub, logs: pytest.LogCaptureFixture, status: int
) -> None:
    stub.fail("ImportSecurityContextW", status)
    with pytest.raises(SspiError) as caught:
        ImportedContext("NTLM", SECRET, 0x1234)
    _assert_clean(_texts([caught.value]))
    assert not [r for r in logs.records if "hunter2" in r.getMessage()]


@pytest.mark.parametrize(
    ("blob", "token", "buffer_type"),
    [
        (SECRET.decode("latin-1"), None, 0),  # a str blob: a TypeError, not an echo
        (SECRET, "hunter2", 0),
        (SECRET, None, SECRET),
        (SECRET, -1, 0),
        (SECRET, None, 2**40),
        (b"", None, 0),
        ([*SECRET], None, 0),
    ],
)
def test_bad_arguments_do_not_echo_the_blob(
    stub: Stub, blob: object, token: object, buffer_type: object
) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        ImportedContext("NTLM", blob, token, buffer_type=buffer_type)  # type: ignore[arg-type]
    _assert_clean(_texts([caught.value]))


def test_exported_context_texts_hold_no_payload(stub: Stub, logs: pytest.LogCaptureFixture) -> None:
    stub.set_export_payload(SECRET)
    stub.set_export_token(0x77)
    produced: list[object] = []
    with ImportedContext("NTLM", b"source") as source:
        exported = export_context(source, ExportFlags.RESET_NEW)
        assert exported.blob == SECRET  # the secret did come back
        produced.append(exported)
        with ImportedContext.from_exported(exported) as again:
            produced.append(again)
        exported.close()
        produced.append(exported)
        consumed = export_context(source, ExportFlags.DELETE_OLD)
        produced += [source, consumed]
        consumed.close()
    built = ExportedContext("NTLM", SECRET, 2)
    produced.append(built)
    with pytest.raises(AttributeError) as caught:
        built.blob = SECRET  # type: ignore[misc]
    produced.append(caught.value)
    _assert_clean(_texts(produced))
    _assert_clean([record.getMessage() for record in logs.records] or ["(no log)"])


def test_failed_exports_do_not_echo_the_payload(stub: Stub) -> None:
    stub.set_export_payload(SECRET)
    with ImportedContext("NTLM", SECRET) as source:
        for status in (0x80090301, 0x80090300, 0x8009035D):
            stub.fail("ExportSecurityContext", status)
            with pytest.raises(SspiError) as caught:
                export_context(source)
            _assert_clean(_texts([caught.value]))
        stub.fail("FreeContextBuffer", 0x80090301)
        with pytest.raises(sspi_import.CleanupWarning) as freed:
            export_context(source)
        _assert_clean(_texts([freed.value, *freed.value.errors, freed.value.result]))
        freed.value.result.close()
    stub.reset()  # the buffer the injected failure kept is the stub's to free


def test_the_finalizer_warning_holds_no_secret(stub: Stub) -> None:
    stub.set_export_payload(SECRET)
    stub.set_export_token(0x99)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        ImportedContext("NTLM", SECRET)
        with ImportedContext("NTLM", b"source") as source:
            export_context(source)  # token left to the finalizer
        gc.collect()
    assert {type(w.message) for w in caught} == {ResourceWarning}
    assert len(caught) == 2
    _assert_clean(str(w.message) for w in caught)


def test_a_password_stays_out_of_identity_texts() -> None:
    credentials = pytest.importorskip("sspi_import.credentials")
    identity = credentials.Identity("alice", "EXAMPLE", PASSWORD)
    texts = [repr(identity), str(identity)]
    with pytest.raises((TypeError, ValueError)) as caught:
        credentials.Identity("", "EXAMPLE", PASSWORD)
    texts += _texts([caught.value])
    for text in texts:
        assert PASSWORD not in text
        assert PASSWORD.encode().hex() not in text
        assert base64.b64encode(PASSWORD.encode()).decode() not in text
        assert "hunter2" not in text


def test_status_texts_never_need_the_blob() -> None:
    _assert_clean([sspi_import.explain(0x80090308), repr(sspi_import.status_info(0x80090308))])
