"""``SecurityContext`` and ``loopback`` at the mocked raw boundary, and on real Windows SSPI."""

from __future__ import annotations

import ctypes
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

import sspi_import
from scripted_sspi import CONTEXT, CREDS, Provider, error, established
from sspi_import import ChannelBindings, handshake
from sspi_import._raw import constants as C  # noqa: N812
from sspi_import._raw.status_codes import (
    SEC_E_OK,
    SEC_I_COMPLETE_AND_CONTINUE,
    SEC_I_COMPLETE_NEEDED,
    SEC_I_CONTINUE_NEEDED,
)
from sspi_import.credentials import Credentials
from sspi_import.handshake import (
    ACCEPTOR_FLAGS,
    DEFAULT_FLAGS,
    RequestFlags,
    SecurityContext,
    loopback,
)
from sspi_import.testing import FakeSspi

# The step() state machine ----------------------------------------------------------------


def test_initiator_state_machine_with_complete_and_continue(provider: Provider) -> None:
    provider.isc = [
        (SEC_I_CONTINUE_NEEDED, b"negotiate", 0),
        (SEC_I_COMPLETE_AND_CONTINUE, b"authenticate", 0),
        (SEC_E_OK, None, int(DEFAULT_FLAGS) | C.ISC_RET_ALLOCATED_MEMORY),
    ]
    with Credentials.acquire("NTLM") as creds:
        ctx = SecurityContext.initiator(creds, "host/server")
        assert not ctx.closed  # not started is not closed
        assert not ctx.started
        assert repr(ctx) == "<SecurityContext initiator package='NTLM' not started>"
        with pytest.raises(ValueError, match="has not started"):
            ctx.sizes()
        assert not ctx.complete
        assert ctx.step(None) == b"negotiate"
        assert ctx.started
        assert not ctx.closed  # owned from the first successful call
        provider.lib.CompleteAuthToken.assert_not_called()
        assert ctx.step(b"challenge") == b"authenticate"
        provider.lib.CompleteAuthToken.assert_called_once()
        assert not ctx.complete
        assert ctx.step(bytearray(b"mutual")) is None
        assert ctx.complete
        assert ctx.flags == DEFAULT_FLAGS  # ALLOCATED_MEMORY is not a request flag
        assert ctx.expiry == sspi_import._filetime.NEVER
        assert provider.existing == [None, CONTEXT, CONTEXT]
        assert provider.inputs == [None, b"challenge", b"mutual"]
        target = provider.lib.InitializeSecurityContextW.call_args_list[0].args[2]
        assert target == "host/server".encode("utf-16-le") + b"\0\0"
        with pytest.raises(ValueError, match="already complete"):
            ctx.step(b"more")
        ctx.close()
        ctx.close()
    assert provider.deleted == [CONTEXT]
    assert provider.creds_freed == [CREDS]  # closed by its own 'with', not by the context


def test_acceptor_complete_needed_and_flag_translation(provider: Provider) -> None:
    granted = C.ASC_RET_INTEGRITY | C.ASC_RET_CONFIDENTIALITY | C.ASC_RET_IDENTIFY
    provider.asc = [
        (SEC_I_CONTINUE_NEEDED, b"challenge", 0),
        (SEC_I_COMPLETE_NEEDED, None, granted),
    ]
    with Credentials.acquire("NTLM", "inbound") as creds:
        with SecurityContext.acceptor(creds, RequestFlags.INTEGRITY | RequestFlags.IDENTIFY) as ctx:
            with pytest.raises(ValueError, match="input token"):
                ctx.step(None)
            assert ctx.step(b"negotiate") == b"challenge"
            assert ctx.step(b"authenticate") is None
            assert ctx.complete
            provider.lib.CompleteAuthToken.assert_called_once()
            assert ctx.flags == (
                RequestFlags.INTEGRITY | RequestFlags.CONFIDENTIALITY | RequestFlags.IDENTIFY
            )
        requested = provider.lib.AcceptSecurityContext.call_args.args[3]
        assert requested == C.ASC_REQ_INTEGRITY | C.ASC_REQ_IDENTIFY | C.ASC_REQ_ALLOCATE_MEMORY
    assert provider.deleted == [CONTEXT]


def test_failed_first_call_leaves_nothing_to_delete(provider: Provider) -> None:
    provider.isc = [(error("SEC_E_TARGET_UNKNOWN", "InitializeSecurityContextW"), None, 0)]
    with Credentials.acquire("Kerberos") as creds:
        ctx = SecurityContext.initiator(creds, "host/nowhere")
        with pytest.raises(sspi_import.TargetUnknownError):
            ctx.step(None)
        assert ctx.closed
        with pytest.raises(ValueError, match="failed"):
            ctx.step(None)
        ctx.close()
    assert provider.deleted == []


def test_failed_later_call_keeps_the_context_owned(provider: Provider) -> None:
    provider.asc = [
        (SEC_I_CONTINUE_NEEDED, b"challenge", 0),
        (error("SEC_E_LOGON_DENIED", "AcceptSecurityContext"), None, 0),
    ]
    with Credentials.acquire("NTLM", "inbound") as creds:
        ctx = SecurityContext.acceptor(creds)
        ctx.step(b"negotiate")
        with pytest.raises(sspi_import.LogonDeniedError):
            ctx.step(b"authenticate")
        assert not ctx.closed
        ctx.close()
    assert provider.deleted == [CONTEXT]


def test_output_buffer_freed_when_the_call_raises(provider: Provider) -> None:
    # A package that allocated the output and then failed: the buffer is still freed.
    provider.isc = [(error("SEC_E_INTERNAL_ERROR", "InitializeSecurityContextW"), b"x", 0)]
    with Credentials.acquire("NTLM") as creds:
        ctx = SecurityContext.initiator(creds)
        with pytest.raises(sspi_import.InternalError):
            ctx.step(None)
    assert len(provider.freed) == 1


def test_output_buffer_freed_when_complete_auth_token_raises(provider: Provider) -> None:
    provider.isc = [(SEC_I_COMPLETE_NEEDED, b"token", 0)]
    provider.lib.CompleteAuthToken.side_effect = error("SEC_E_INVALID_TOKEN", "CompleteAuthToken")
    with Credentials.acquire("NTLM") as creds, SecurityContext.initiator(creds) as ctx:
        with pytest.raises(sspi_import.InvalidTokenError):
            ctx.step(None)
        assert not ctx.closed  # the context exists: closing deletes it
    assert len(provider.freed) == 1
    assert provider.deleted == [CONTEXT]


def test_unexpected_success_status_is_an_error(provider: Provider) -> None:
    incomplete_credentials = 0x00090320
    provider.isc = [(incomplete_credentials, None, 0)]
    with (
        Credentials.acquire("NTLM") as creds,
        SecurityContext.initiator(creds) as ctx,
        pytest.raises(sspi_import.SspiError) as info,
    ):
        ctx.step(None)
    assert info.value.status == incomplete_credentials
    assert info.value.function == "InitializeSecurityContextW"
    assert provider.deleted == [CONTEXT]


def test_constructor_validation(provider: Provider) -> None:
    with pytest.raises(TypeError, match="initiator"):
        SecurityContext()
    with pytest.raises(TypeError, match="Credentials"):
        SecurityContext.initiator("creds")  # type: ignore[arg-type]
    with Credentials.acquire("NTLM") as creds:
        with pytest.raises(ValueError, match="unknown request flags"):
            SecurityContext.initiator(creds, flags=C.ISC_REQ_ALLOCATE_MEMORY)
        with pytest.raises(TypeError):
            SecurityContext.acceptor(creds, flags=True)
        with pytest.raises(TypeError):
            SecurityContext.initiator(creds, target_name=b"host/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="closed"):
        SecurityContext.initiator(creds)
    provider.lib.InitializeSecurityContextW.assert_not_called()


def test_closed_before_start_cannot_step(provider: Provider) -> None:
    with Credentials.acquire("NTLM") as creds:
        ctx = SecurityContext.initiator(creds)
        ctx.close()
        with pytest.raises(ValueError, match="closed"):
            ctx.step(None)
    provider.lib.InitializeSecurityContextW.assert_not_called()


def test_decrypt_rejects_malformed_messages(provider: Provider) -> None:
    with established(provider) as ctx:
        with pytest.raises(ValueError, match="shorter"):
            ctx.decrypt(b"\x01")
        with pytest.raises(ValueError, match="trailer is 16 bytes"):
            ctx.decrypt(b"\x10\0\0\0abc")
        with pytest.raises(TypeError):
            ctx.decrypt("text")  # type: ignore[arg-type]
    provider.lib.DecryptMessage.assert_not_called()
    provider.lib.DecryptMessage_bare.assert_not_called()


# loopback ----------------------------------------------------------------------------------


def test_loopback_cleans_everything_up_on_failure(provider: Provider) -> None:
    provider.isc = [(SEC_I_CONTINUE_NEEDED, b"negotiate", 0)]
    provider.asc = [(error("SEC_E_INTERNAL_ERROR", "AcceptSecurityContext"), None, 0)]
    with pytest.raises(sspi_import.InternalError):
        loopback("Negotiate")
    assert provider.deleted == [CONTEXT]  # the client's; the server's never existed
    assert provider.creds_freed == [CREDS, CREDS]


def test_loopback_contexts_own_their_credentials(provider: Provider) -> None:
    provider.isc = [(SEC_I_CONTINUE_NEEDED, b"1", 0), (SEC_E_OK, b"3", int(DEFAULT_FLAGS))]
    provider.asc = [(SEC_I_CONTINUE_NEEDED, b"2", 0), (SEC_I_COMPLETE_NEEDED, None, 0)]
    client, server = loopback()
    assert client.complete
    assert server.complete
    assert provider.inputs == [None, b"1", b"2", b"3"]
    assert client.package == "NTLM"
    client.close()
    assert len(provider.creds_freed) == 1
    server.close()
    assert provider.deleted == [CONTEXT, CONTEXT]
    assert len(provider.creds_freed) == 2


def test_loopback_stalled_handshake(provider: Provider) -> None:
    provider.isc = [(SEC_I_CONTINUE_NEEDED, b"1", 0)]
    provider.asc = [(SEC_I_CONTINUE_NEEDED, None, 0)]
    with pytest.raises(RuntimeError, match="stopped before both sides completed"):
        loopback()
    assert len(provider.deleted) == 2
    assert len(provider.creds_freed) == 2


def test_public_names() -> None:
    for name in ("SecurityContext", "RequestFlags", "ContextSizes", "loopback"):
        assert name in sspi_import.__all__
        assert getattr(sspi_import, name) is not None


# Windows: real secur32 with the logged-on user ---------------------------------------------


def get_user_name() -> str:
    """The thread's user (the impersonated one while impersonating), via GetUserNameW."""
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    size = ctypes.c_uint32(257)
    buffer = ctypes.create_unicode_buffer(size.value)
    if not advapi32.GetUserNameW(buffer, ctypes.byref(size)):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
    return buffer.value


@pytest.fixture
def windows_pair(request: pytest.FixtureRequest) -> Iterator[tuple[SecurityContext, ...]]:
    client, server = loopback(request.param)
    with client, server:
        yield client, server


WINDOWS_PACKAGES = pytest.mark.parametrize(
    "windows_pair", ["NTLM", "Negotiate"], indirect=True, ids=["NTLM", "Negotiate"]
)


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_loopback_established(windows_pair: tuple[SecurityContext, ...]) -> None:
    client, server = windows_pair
    assert client.complete
    assert server.complete
    assert client.flags & RequestFlags.INTEGRITY
    assert server.flags & RequestFlags.CONFIDENTIALITY
    assert client.session_key() == server.session_key()
    assert server.package_name in ("NTLM", "Kerberos")
    sizes = server.sizes()
    assert sizes is server.sizes()  # cached
    assert sizes.max_signature > 0
    assert sizes.security_trailer > 0
    _start, expiry = server.lifespan
    assert expiry is not None
    assert expiry.tzinfo is not None


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_user_name_is_the_logged_on_user(windows_pair: tuple[SecurityContext, ...]) -> None:
    _client, server = windows_pair
    assert server.user_name.split("\\")[-1].lower() == get_user_name().lower()


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_sign_and_verify(windows_pair: tuple[SecurityContext, ...]) -> None:
    client, server = windows_pair
    signature = client.sign(b"message")
    server.verify(b"message", signature)
    reply = server.sign(b"reply")
    client.verify(b"reply", reply)
    forged = client.sign(b"second")
    with pytest.raises(sspi_import.MessageAlteredError) as info:
        server.verify(b"seconD", forged)
    assert info.value.function == "VerifySignature"


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_encrypt_and_decrypt(windows_pair: tuple[SecurityContext, ...]) -> None:
    client, server = windows_pair
    assert server.decrypt(client.encrypt(b"to server")) == b"to server"
    assert client.decrypt(server.encrypt(memoryview(b"to client"))) == b"to client"
    message = bytearray(client.encrypt(b"tamper with me"))
    message[-1] ^= 1
    with pytest.raises(sspi_import.MessageAlteredError) as info:
        server.decrypt(message)
    assert info.value.function == "DecryptMessage"


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_impersonate(windows_pair: tuple[SecurityContext, ...]) -> None:
    _client, server = windows_pair
    before = get_user_name()
    with server.impersonate():
        assert get_user_name().lower() == server.user_name.split("\\")[-1].lower()
    assert get_user_name() == before
    with pytest.raises(KeyError), server.impersonate():
        raise KeyError("reverted anyway")
    assert get_user_name() == before


def _user_sid(token: int) -> bytes:
    """The SID of a token's user (``GetTokenInformation(TokenUser)``), as bytes."""
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    get = advapi32.GetTokenInformation
    get.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_uint32),
    ]
    get.restype = ctypes.c_int32
    advapi32.GetLengthSid.argtypes = [ctypes.c_void_p]
    advapi32.GetLengthSid.restype = ctypes.c_uint32
    token_user = 1  # TOKEN_INFORMATION_CLASS TokenUser
    needed = ctypes.c_uint32()
    get(token, token_user, None, 0, ctypes.byref(needed))  # asks the size
    buffer = ctypes.create_string_buffer(needed.value)
    if not get(token, token_user, buffer, needed, ctypes.byref(needed)):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
    sid = ctypes.c_void_p.from_buffer(buffer).value  # TOKEN_USER.User.Sid: the first field
    assert sid, "TokenUser without a SID"
    return ctypes.string_at(sid, advapi32.GetLengthSid(sid))


def _process_user_sid() -> bytes:
    """The SID of this process's user (``OpenProcessToken(TOKEN_QUERY)``)."""
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    advapi32.OpenProcessToken.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    advapi32.OpenProcessToken.restype = ctypes.c_int32
    kernel32.GetCurrentProcess.restype = ctypes.c_void_p
    kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
    handle = ctypes.c_void_p()
    if not advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), 0x0008, ctypes.byref(handle)):
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]
    try:
        return _user_sid(handle.value or 0)
    finally:
        kernel32.CloseHandle(handle)


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_client_token_is_the_logged_on_users(
    windows_pair: tuple[SecurityContext, ...],
) -> None:
    # The loopback authenticated this process's own user: the token the server context
    # hands out names exactly that user (the same SID as the process token's).
    _client, server = windows_pair
    with server.client_token() as token:
        assert _user_sid(token.value) == _process_user_sid()
        with server.client_token() as again:
            assert again.value != token.value  # a new handle each time
            assert _user_sid(again.value) == _process_user_sid()
    assert token.closed
    with server.client_token() as kept:
        value = kept.detach()
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.CloseHandle.argtypes = [ctypes.c_void_p]
    assert kernel32.CloseHandle(value)  # detached: ours to close, and still open


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_imported_context_hands_out_the_client_token(
    windows_pair: tuple[SecurityContext, ...],
) -> None:
    # What a worker does: import the export (with its token), then ask for the token.
    _client, server = windows_pair
    with (
        server.export() as exported,
        sspi_import.ImportedContext.from_exported(exported) as imported,
        imported.client_token() as token,
    ):
        assert token.value != exported.token  # a handle of its own
        assert _user_sid(token.value) == _process_user_sid()


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_client_side_has_no_client_token(
    windows_pair: tuple[SecurityContext, ...],
) -> None:
    client, _server = windows_pair
    with pytest.raises(sspi_import.SspiError) as info:
        client.client_token()
    # What Windows answers for an initiator is not documented; the simulated provider
    # answers SEC_E_NO_IMPERSONATION. If this fails, make FakeSspi's
    # _QuerySecurityContextToken and client_token()'s docstring say what Windows does.
    assert info.value.symbol in {
        "SEC_E_NO_IMPERSONATION",
        "SEC_E_INVALID_HANDLE",
        "SEC_E_UNSUPPORTED_FUNCTION",
    }, info.value


@pytest.mark.windows_sspi
@WINDOWS_PACKAGES
def test_windows_export_import_in_process(windows_pair: tuple[SecurityContext, ...]) -> None:
    client, server = windows_pair
    package = server.package_name
    with (
        server.export() as exported,
        sspi_import.ImportedContext(package, exported.blob, exported.token) as imported,
    ):
        assert imported.user_name == server.user_name
        assert imported.package_name == package
        assert imported.decrypt(client.encrypt(b"to the import")) == b"to the import"
        signature = client.sign(b"signed")
        imported.verify(b"signed", signature)
        with imported.impersonate():
            assert get_user_name().lower() == imported.user_name.split("\\")[-1].lower()


@pytest.mark.windows_sspi
def test_windows_loopback_leaks_nothing(mocker: MockerFixture) -> None:
    client, server = loopback("NTLM")
    delete = mocker.spy(client._lib, "DeleteSecurityContext")
    free = mocker.spy(client._lib, "FreeCredentialsHandle")
    client.close()
    server.close()
    assert delete.call_count == 2
    assert free.call_count == 2
    assert client.credentials.closed
    assert server.credentials.closed


@pytest.mark.windows_sspi
def test_windows_lane_has_secur32() -> None:
    assert "secur32" in sspi_import.library_description().lower()


# Every request flag, both ways -----------------------------------------------------------

ABI = json.loads((Path(__file__).resolve().parent.parent / "tools/abi_table.json").read_text())
HEADER = ABI["targets"]["x86_64"]["constants"]  # the same values on i686 (test_abi)
# Where the result bit or the acceptor bit is not named as the request: looked up in sspi.h.
ISC_RET_NAME = {
    "PROMPT_FOR_CREDS": "USED_COLLECTED_CREDS",
    "USE_SUPPLIED_CREDS": "USED_SUPPLIED_CREDS",
    "USE_DCE_STYLE": "USED_DCE_STYLE",
    "FRAGMENT_TO_FIT": "FRAGMENT_ONLY",
    "USE_HTTP_STYLE": "USED_HTTP_STYLE",
}
ASC_REQ_NAME = {"NULL_SESSION": "ALLOW_NULL_SESSION"}
ASC_RET_NAME = {
    "USE_DCE_STYLE": "USED_DCE_STYLE",
    "FRAGMENT_TO_FIT": "FRAGMENT_ONLY",
}
NOT_ON_ACCEPTOR = {
    "PROMPT_FOR_CREDS",
    "USE_SUPPLIED_CREDS",
    "MANUAL_CRED_VALIDATION",
    "FORWARD_CREDENTIALS",
    "NO_INTEGRITY",
    "USE_HTTP_STYLE",
    "UNVERIFIED_TARGET_NAME",
    "CONFIDENTIALITY_ONLY",
}
LEFT_OUT = {"ALLOCATE_MEMORY", "RESERVED1", "MESSAGES"}  # internal, undocumented, 64-bit


def test_request_flags_name_every_isc_req_bit_of_the_header() -> None:
    header = Path("/usr/share/mingw-w64/include/sspi.h")
    if header.exists():  # the table holds only what constants.py declares: read the header too
        named = set(re.findall(r"#define ISC_REQ_(\w+) ", header.read_text()))
    else:
        named = {k.removeprefix("ISC_REQ_") for k in HEADER if k.startswith("ISC_REQ_")}
    members = {m.name for m in RequestFlags if m.name != "NONE"}
    assert members == named - LEFT_OUT
    for member in RequestFlags:
        if member.name != "NONE":
            assert member.value == HEADER[f"ISC_REQ_{member.name}"], member


def test_acceptor_flags_are_the_header_bits() -> None:
    assert {m.name for m in RequestFlags if m & ~ACCEPTOR_FLAGS} == NOT_ON_ACCEPTOR
    for member in RequestFlags:
        name = str(member.name)
        if name == "NONE" or name in NOT_ON_ACCEPTOR:
            continue
        asc = HEADER[f"ASC_REQ_{ASC_REQ_NAME.get(name, name)}"]
        assert handshake._to_asc_req(member) == asc, name
        ret = HEADER.get(f"ASC_RET_{ASC_RET_NAME.get(name, name)}")
        if ret is not None:
            assert handshake._from_asc_ret(ret) == member, name
        isc_ret = HEADER.get(f"ISC_RET_{ISC_RET_NAME.get(name, name)}")
        if isc_ret is not None:
            assert handshake._from_isc_ret(isc_ret) == member, name


def test_initiator_only_flags_translate_their_results() -> None:
    for name in NOT_ON_ACCEPTOR:
        isc_ret = HEADER.get(f"ISC_RET_{ISC_RET_NAME.get(name, name)}")
        if isc_ret is not None:
            assert handshake._from_isc_ret(isc_ret) == RequestFlags[name], name


def test_result_bits_that_differ_from_the_request_bits() -> None:
    # ISC_RET_CALL_LEVEL is 0x2000 (ISC_REQ_FRAGMENT_SUPPLIED); 0x1000 is INTERMEDIATE_RETURN.
    assert handshake._from_isc_ret(C.ISC_RET_CALL_LEVEL) == RequestFlags.CALL_LEVEL
    assert handshake._from_isc_ret(C.ISC_RET_INTERMEDIATE_RETURN) == RequestFlags.NONE
    assert handshake._from_isc_ret(C.ISC_RET_ALLOCATED_MEMORY) == RequestFlags.NONE
    # ASC_REQ_EXTENDED_ERROR is 0x8000, ISC_REQ_STREAM's value.
    assert handshake._to_asc_req(RequestFlags.EXTENDED_ERROR) == C.ASC_REQ_EXTENDED_ERROR
    assert handshake._from_asc_ret(C.ASC_RET_EXTENDED_ERROR) == RequestFlags.EXTENDED_ERROR
    assert handshake._from_asc_ret(C.ASC_RET_THIRD_LEG_FAILED) == RequestFlags.NONE


def test_new_flags_reach_both_calls_translated(provider: Provider) -> None:
    wanted = RequestFlags.USE_DCE_STYLE | RequestFlags.EXTENDED_ERROR | RequestFlags.STREAM
    # INTERMEDIATE_RETURN is 0x1000, ISC_REQ_CALL_LEVEL's value: not a granted request.
    granted = C.ISC_RET_USED_DCE_STYLE | C.ISC_RET_EXTENDED_ERROR | C.ISC_RET_INTERMEDIATE_RETURN
    provider.isc = [(SEC_E_OK, b"t", granted)]
    provider.asc = [(SEC_E_OK, None, C.ASC_RET_EXTENDED_ERROR | C.ASC_RET_STREAM)]
    with Credentials.acquire("NTLM", "both") as creds:
        with SecurityContext.initiator(creds, None, wanted) as client:
            client.step(None)
            assert client.flags == RequestFlags.USE_DCE_STYLE | RequestFlags.EXTENDED_ERROR
        sent = provider.lib.InitializeSecurityContextW.call_args.args[3]
        assert sent == int(wanted) | C.ISC_REQ_ALLOCATE_MEMORY
        with SecurityContext.acceptor(creds, wanted) as server:
            server.step(b"t")
            assert server.flags == RequestFlags.EXTENDED_ERROR | RequestFlags.STREAM
        sent = provider.lib.AcceptSecurityContext.call_args.args[3]
        expected = C.ASC_REQ_USE_DCE_STYLE | C.ASC_REQ_EXTENDED_ERROR | C.ASC_REQ_STREAM
        assert sent == expected | C.ASC_REQ_ALLOCATE_MEMORY


@pytest.mark.parametrize("bits", [C.ISC_REQ_ALLOCATE_MEMORY, 0x00100000, 0x10000000, 1 << 32, -1])
def test_unknown_and_internal_bits_are_still_refused(provider: Provider, bits: int) -> None:
    with Credentials.acquire("NTLM") as creds, pytest.raises(ValueError, match="unknown"):
        SecurityContext.initiator(creds, None, bits)
    provider.lib.InitializeSecurityContextW.assert_not_called()


@pytest.mark.parametrize("name", sorted(NOT_ON_ACCEPTOR))
def test_acceptor_refuses_initiator_only_flags(provider: Provider, name: str) -> None:
    with Credentials.acquire("NTLM", "inbound") as creds:
        with pytest.raises(ValueError, match=f"no ASC_REQ_.*{name}"):
            SecurityContext.acceptor(creds, DEFAULT_FLAGS | RequestFlags[name])
        with SecurityContext.initiator(creds, None, RequestFlags[name]):
            pass  # the initiator takes it
    provider.lib.AcceptSecurityContext.assert_not_called()


# Channel bindings on every step ------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "reports_extra"),
    [
        ("NTLM", False),
        ("Kerberos", False),
        ("Negotiate", False),
        ("Schannel", True),
        ("Microsoft Unified Security Protocol Provider", True),
    ],
)
def test_bindings_go_with_every_step_the_first_included(
    provider: Provider, package: str, reports_extra: bool
) -> None:
    """Input buffers: the token, then the bindings; the EMPTY one for EXTRA, Schannel only.

    What .NET, Chromium, curl and pyspnego pass for NTLM, Kerberos and Negotiate;
    Microsoft documents the extra SECBUFFER_EMPTY input buffer for Schannel only.
    """
    cb = ChannelBindings(application_data=b"tls-server-end-point:" + bytes(range(32)))
    provider.isc = [(SEC_I_CONTINUE_NEEDED, b"negotiate", 0), (SEC_E_OK, b"auth", 0)]
    provider.asc = [(SEC_I_CONTINUE_NEEDED, b"challenge", 0), (SEC_E_OK, None, 0)]
    with (
        Credentials.acquire(package, "both") as creds,
        SecurityContext.initiator(creds, "host/server", channel_bindings=cb) as client,
        SecurityContext.acceptor(creds, channel_bindings=cb) as server,
    ):
        server.step(client.step(None) or b"")
        server.step(client.step(b"challenge") or b"")
    binding = (C.SECBUFFER_CHANNEL_BINDINGS, bytes(cb))
    empty = [(C.SECBUFFER_EMPTY, b"")] if reports_extra else []
    assert provider.input_buffers == [
        [binding],  # the initiator's first step: no token, the bindings all the same
        [(C.SECBUFFER_TOKEN, b"negotiate"), *empty, binding],
        [(C.SECBUFFER_TOKEN, b"challenge"), *empty, binding],
        [(C.SECBUFFER_TOKEN, b"auth"), *empty, binding],
    ]


def test_without_bindings_the_first_step_has_no_input(provider: Provider) -> None:
    provider.isc = [(SEC_I_CONTINUE_NEEDED, b"negotiate", 0)]
    with Credentials.acquire("NTLM") as creds, SecurityContext.initiator(creds) as client:
        client.step(None)
    assert provider.input_buffers == [[]]
    assert provider.lib.InitializeSecurityContextW.call_args.args[6] is None


# Input that is not one whole token (FakeSspi reports EXTRA and INCOMPLETE) ---------------


def _fake_pair(
    package: str = "NTLM",
) -> tuple[Credentials, Credentials, SecurityContext, SecurityContext]:
    cc = Credentials.acquire(package, "outbound")
    sc = Credentials.acquire(package, "inbound")
    client = SecurityContext.initiator(cc, "host/server")
    server = SecurityContext.acceptor(sc)
    client._owns_credentials = server._owns_credentials = True
    return cc, sc, client, server


def test_extra_is_the_unconsumed_tail() -> None:
    # Schannel is the package documented to report EXTRA (it gets the EMPTY buffer).
    with FakeSspi(packages=("Schannel",)) as fake:
        _, _, client, server = _fake_pair("Schannel")
        _extra_handshake(client, server)
    assert not fake.misuses
    assert fake.outstanding().details == ()


def test_ntlm_takes_one_whole_token_and_reports_no_extra(sspi_fake: Any) -> None:
    _, _, client, server = _fake_pair("NTLM")
    with client, server:
        first = client.step(None)
        assert first is not None
        challenge = server.step(first + b"START OF NEXT")  # no EMPTY buffer: nothing to say
        assert server.extra == b""
        assert challenge is not None


def _extra_handshake(client: SecurityContext, server: SecurityContext) -> None:
    with client, server:
        first = client.step(None)
        assert first is not None
        assert client.extra == b""
        challenge = server.step(bytearray(first + b"START OF NEXT"))
        assert server.extra == b"START OF NEXT"
        assert challenge is not None
        last = client.step(memoryview(challenge + b"!"))
        assert client.extra == b"!"
        assert last is not None
        assert server.extra == b"START OF NEXT"
        with pytest.raises(sspi_import.IncompleteMessageError):
            server.step(last[:12])
        assert server.extra == b""  # nothing of the earlier input is left to hand on
        server.step(last)
        assert server.extra == b""  # reset by every step
        assert client.complete
        assert server.complete
        assert client.session_key() == server.session_key()


def test_incomplete_token_can_be_retried_with_more(sspi_fake: Any) -> None:
    _, _, client, server = _fake_pair()
    with client, server:
        first = client.step(None)
        assert first is not None
        with pytest.raises(sspi_import.IncompleteMessageError, match="read more") as info:
            server.step(first[:12])
        assert "call step() again" in str(info.value)
        assert info.value.function == "AcceptSecurityContext"
        assert not server.started  # nothing was made: the first step is still to come
        assert not server.closed
        challenge = server.step(first)
        assert challenge is not None
        with pytest.raises(sspi_import.IncompleteMessageError):
            client.step(challenge[:-2])
        assert client.extra == b""
        assert client.started
        assert not client.closed
        last = client.step(challenge)
        assert last is not None
        server.step(last)
        assert client.complete
        assert server.complete


def test_incomplete_from_complete_auth_token_is_not_retried(provider: Provider) -> None:
    provider.isc = [(SEC_I_COMPLETE_NEEDED, b"t", 0)]
    provider.lib.CompleteAuthToken.return_value = -2146893032  # SEC_E_INCOMPLETE_MESSAGE
    with Credentials.acquire("NTLM") as creds, SecurityContext.initiator(creds) as ctx:
        with pytest.raises(sspi_import.IncompleteMessageError) as info:
            ctx.step(None)
        assert info.value.function == "CompleteAuthToken"
        with pytest.raises(ValueError, match="failed"):
            ctx.step(b"more")


def test_other_failures_still_end_the_handshake(sspi_fake: Any) -> None:
    _, _, client, server = _fake_pair()
    with client, server:
        client.step(None)
        with pytest.raises(sspi_import.InvalidTokenError):
            server.step(b"not a token at all")
        with pytest.raises(ValueError, match="failed"):
            server.step(b"again")


def test_the_token_sent_is_the_one_complete_auth_token_left(provider: Provider) -> None:
    # CompleteAuthToken exists to update the output token (Digest, DCE style): the token
    # step() returns must be read after it, not before (issue 13, item 7).
    provider.isc = [(SEC_I_COMPLETE_AND_CONTINUE, b"draft", 0)]

    def complete(handle: Any, desc: Any) -> int:
        buffer = getattr(desc, "_obj", desc).pBuffers[0]
        ctypes.memmove(buffer.pvBuffer, b"final", 5)  # updated in place, as packages do
        return 0

    provider.lib.CompleteAuthToken.side_effect = complete
    with Credentials.acquire("NTLM") as creds, SecurityContext.initiator(creds) as ctx:
        assert ctx.step(None) == b"final"
    provider.lib.CompleteAuthToken.assert_called_once()
