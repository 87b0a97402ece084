"""adopt_context: taking over handles from raw pairs, pywin32's integer and pywin32 objects."""

from __future__ import annotations

import gc
import pathlib
import subprocess
import sys
import textwrap

import pytest

import sspi_import
from sspi_import import ExportFlags, adopt_context, export_context, library
from sspi_import._raw.structs import SecHandle
from sspi_import.adopt import handle_to_int
from sspi_import.testing import FakeSspi
from stubs import Stub


class PyCtxtHandle:
    """Shaped like pywin32's: Detach() gives the handle as an int once, then -1."""

    def __init__(self, pair: tuple[int, int]) -> None:
        self.pair: tuple[int, int] | None = pair
        self.detached = 0

    def Detach(self) -> int:  # noqa: N802 - pywin32's name
        self.detached += 1
        pair, self.pair = self.pair, None
        return -1 if pair is None else handle_to_int(*pair)


def test_adopt_a_raw_pair_owns_it(stub: Stub) -> None:
    pair = stub.new_context()
    with adopt_context(pair, "NTLM") as ctx:
        assert isinstance(ctx, sspi_import.SecurityContextBase)
        assert not isinstance(ctx, sspi_import.SecurityContext)  # no handshake, no credentials
        assert ctx.package == "NTLM"
        assert ctx.complete
        assert repr(ctx) == "<AdoptedContext package='NTLM' open>"
    assert ctx.closed
    assert stub.calls("DeleteSecurityContext") == 1
    assert stub.last_handle() == pair


def test_adopt_the_pywin32_integer(stub: Stub) -> None:
    pair = stub.new_context()
    ctx = adopt_context(handle_to_int(*pair), "Kerberos")
    assert ctx.detach() == pair
    assert adopt_context(SecHandle(*pair)).detach() == pair
    with adopt_context(pair):
        pass
    assert stub.live_contexts() == 0


def test_adopt_a_pywin32_object_detaches_it(stub: Stub) -> None:
    pair = stub.new_context()
    source = PyCtxtHandle(pair)
    with adopt_context(source, "NTLM") as ctx:
        assert source.detached == 1  # pywin32 will never delete it now
        exported = ctx.export()
        assert exported.package == "NTLM"
        assert stub.last_handle() == pair
    assert stub.calls("DeleteSecurityContext") == 1


def test_adopt_a_detached_pywin32_object_is_refused(stub: Stub) -> None:
    source = PyCtxtHandle(stub.new_context())
    with adopt_context(source):
        pass
    with pytest.raises(ValueError, match="already detached or deleted"):
        adopt_context(source)


def test_package_unknown_when_the_provider_cannot_tell(stub: Stub) -> None:
    # The stub has no QueryContextAttributesW: the package stays unknown, export still works.
    with adopt_context(stub.new_context()) as ctx:
        assert ctx.package is None
        assert export_context(ctx).package is None


def test_forgotten_adopted_context_is_deleted_with_a_warning(stub: Stub) -> None:
    ctx = adopt_context(stub.new_context(), "NTLM")
    with pytest.warns(ResourceWarning, match="unclosed <AdoptedContext"):
        del ctx
    assert stub.live_contexts() == 0


def test_delete_old_export_consumes_the_adopted_context(stub: Stub) -> None:
    ctx = adopt_context(stub.new_context(), "NTLM")
    exported = ctx.export(ExportFlags.DELETE_OLD)
    assert ctx.closed
    assert exported.blob
    ctx.close()
    assert stub.calls("DeleteSecurityContext") == 0


def test_adopted_context_has_no_handshake_or_credentials(stub: Stub) -> None:
    with adopt_context(stub.new_context(), "NTLM") as ctx:
        assert not hasattr(ctx, "step")
        assert not hasattr(ctx, "credentials")


@pytest.mark.parametrize(
    ("handle", "exc"),
    [
        (-1, ValueError),
        (-5, ValueError),
        (1 << 200, ValueError),
        ((1, 2, 3), TypeError),
        ((1, "x"), TypeError),
        ((-1, 0), ValueError),
        ("0x10", TypeError),
        (None, TypeError),
        (True, TypeError),
        (2.5, TypeError),
    ],
)
def test_bad_handles_are_refused_before_anything(
    stub: Stub, handle: object, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        adopt_context(handle)  # type: ignore[arg-type]
    assert stub.calls("DeleteSecurityContext") == 0


def test_a_context_of_this_library_is_refused(stub: Stub) -> None:
    with adopt_context(stub.new_context(), "NTLM") as ctx, pytest.raises(TypeError):
        adopt_context(ctx)  # type: ignore[arg-type]


def test_bad_package_is_refused_before_detaching(stub: Stub) -> None:
    source = PyCtxtHandle(stub.new_context())
    with pytest.raises(ValueError, match="NUL"):
        adopt_context(source, "NT\0LM")
    assert source.detached == 0
    with adopt_context(source):
        pass


def test_no_library_is_refused_before_detaching(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    # No library can be loaded: SSPI_IMPORT_LIBRARY names a missing file, which the loader
    # tries before secur32 (always loadable on Windows, where the fake handle below would
    # reach it: Wine's secur32 then dereferences it, an access violation).
    monkeypatch.setenv(library.ENV_VAR, str(tmp_path / "no-such-sspi-library"))
    source = PyCtxtHandle((1, 2))
    with pytest.raises(sspi_import.SspiUnavailableError, match="no-such-sspi-library"):
        adopt_context(source)
    assert source.detached == 0


@pytest.mark.parametrize(
    "failure",
    [OSError("exception: access violation"), KeyboardInterrupt()],
    ids=["access-violation", "interrupt"],
)
def test_a_failed_package_lookup_deletes_the_adopted_context(
    stub: Stub, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    # Anything but an SSPI error while the package is looked up ends the adoption, and the
    # handle taken over is deleted then, not left to the finalizer (a ResourceWarning in
    # whichever later test collects garbage).
    def lookup(self: object) -> str:
        raise failure

    monkeypatch.setattr(sspi_import.AdoptedContext, "package_name", property(lookup))
    pair = stub.new_context()
    with pytest.raises(type(failure)):
        adopt_context(pair)
    assert stub.calls("DeleteSecurityContext") == 1
    assert stub.last_handle() == pair
    assert stub.live_contexts() == 0


def test_a_provider_that_cannot_name_the_package_leaves_it_unknown(stub: Stub) -> None:
    # The stub has no QueryContextAttributesW: SspiUnavailableError, which is not fatal.
    with adopt_context(stub.new_context()) as ctx:
        assert ctx.package is None


def test_sspi_rs_context_adopted_from_a_raw_pair(sspi_rs: pathlib.Path) -> None:
    identity = sspi_import.Identity("alice", "EXAMPLE", "p4ssw0rd")
    client, server = sspi_import.loopback("NTLM", identity)
    with client, server:
        pair = server.detach()
        with adopt_context(pair) as adopted:
            assert adopted.package == "NTLM"  # looked up from the context
            assert adopted.user_name == "EXAMPLE\\alice"
            sealed = client.encrypt(b"to the adopted side")
            assert adopted.decrypt(sealed) == b"to the adopted side"


WINDOWS_CHILD = textwrap.dedent(
    """
    import sys
    import sspi_import
    exported = sspi_import.ExportedContext.from_bytes(sys.stdin.buffer.read())
    with sspi_import.ImportedContext.from_exported(exported) as ctx:
        print(ctx.user_name)
    """
)


@pytest.mark.windows_sspi
def test_pywin32_server_context_adopted_exported_and_imported_in_a_child() -> None:
    sspi = pytest.importorskip("sspi", reason="pywin32 is a Windows-only test dependency")
    client = sspi.ClientAuth("NTLM")
    server = sspi.ServerAuth("NTLM")
    token = None
    while True:
        _, out = client.authorize(token)
        status, reply = server.authorize(out[0].Buffer)
        if status == 0:
            break
        token = reply[0].Buffer
    pywin32_handle = server.ctxt
    with adopt_context(pywin32_handle) as ctx:
        assert ctx.package == "NTLM"
        name = ctx.user_name
        exported = ctx.export(ExportFlags.DELETE_OLD)
    # pywin32's object holds no handle any more, so its destructor deletes nothing.
    assert pywin32_handle.Detach() == -1
    child = subprocess.Popen(
        [sys.executable, "-c", WINDOWS_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    with exported, exported.for_process(child) as handed:
        out, _ = child.communicate(handed.to_bytes(), timeout=60)
    assert child.returncode == 0
    assert out.decode().strip() == name


class SlotPyCtxtHandle:
    """Two pointer-sized words right after the object header: pywin32's PyCtxtHandle layout."""

    __slots__ = ("w0", "w1")
    w0: object
    w1: object

    def Detach(self) -> int:  # noqa: N802 - pywin32's name
        return -1


SlotPyCtxtHandle.__name__ = "PyCtxtHandle"


def test_export_reads_a_pywin32_handle_in_place(stub: Stub) -> None:
    low, high = object(), object()
    source = SlotPyCtxtHandle()
    source.w0, source.w1 = low, high  # the slots hold these objects' addresses
    with pytest.raises(sspi_import.InvalidHandleError):
        export_context(source)  # not a live handle of the stub: SSPI says so
    assert stub.last_handle() == (id(low), id(high))


def test_export_of_the_pywin32_integer_does_not_take_it_over(stub: Stub) -> None:
    pair = stub.new_context()
    exported = export_context(handle_to_int(*pair))
    assert exported.package is None
    assert stub.last_handle() == pair
    assert stub.live_contexts() == 1  # still the caller's
    with adopt_context(pair):
        pass


def test_delete_old_export_detaches_the_pywin32_object(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sspi_import import exported as handoff

    pair = stub.new_context()
    source = PyCtxtHandle(pair)
    monkeypatch.setattr(handoff, "peek_pywin32", lambda obj: obj.pair)
    export_context(source)
    assert source.detached == 0  # a plain export leaves pywin32 the owner
    export_context(source, ExportFlags.DELETE_OLD)
    assert source.detached == 1  # SSPI deleted it: pywin32 must not delete it again
    assert stub.live_contexts() == 0


def test_failed_delete_old_export_leaves_the_pywin32_object_alone(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sspi_import import exported as handoff

    source = PyCtxtHandle(stub.new_context())
    monkeypatch.setattr(handoff, "peek_pywin32", lambda obj: obj.pair)
    stub.fail("ExportSecurityContext", 0x80090309)
    with pytest.raises(sspi_import.CannotPackError):
        export_context(source, ExportFlags.DELETE_OLD)
    assert source.detached == 0
    with adopt_context(source):
        pass


def test_delete_old_export_closes_loopback_credentials(sspi_fake: object) -> None:
    client, server = sspi_import.loopback("NTLM")
    with client:
        exported = server.export(ExportFlags.DELETE_OLD)
        assert server.closed
        assert server.credentials.closed  # nothing of the consumed server is left open
        exported.close()


def test_pywin32_example_runs() -> None:
    example = pathlib.Path(__file__).parent.parent / "examples" / "pywin32_adopt.py"
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "the child process imported the context of EXAMPLE\\alice" in result.stdout
    if sys.platform != "win32":
        assert "simulating it" in result.stdout


def test_a_handle_the_provider_does_not_know_is_refused_and_not_deleted(
    sspi_fake: FakeSspi,
) -> None:
    """The package lookup is the first call on the handle: an unknown one ends there."""
    with pytest.raises(sspi_import.InvalidHandleError, match="QueryContextAttributesW"):
        adopt_context((1, 2))
    gc.collect()  # no owner is left behind to warn or to delete it later
    assert [m.function for m in sspi_fake.misuses] == ["QueryContextAttributesW"]
    sspi_fake.misuses.clear()
    assert sspi_fake.outstanding().contexts == 0
