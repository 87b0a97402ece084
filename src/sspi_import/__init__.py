"""Hand an authenticated Windows security context to another process.

``sspi_import`` wraps the SSPI export/import family (``ExportSecurityContext``,
``ImportSecurityContextW``, ``DeleteSecurityContext``, ``FreeContextBuffer``) with typed
errors and owned handles::

    # where the client was authenticated (worker: its Process, Popen or pid):
    with server_context.export(sspi_import.ExportFlags.DELETE_OLD) as exported:
        payload = exported.for_process(worker).to_bytes()  # token duplicated into it
    # in the worker:
    exported = sspi_import.ExportedContext.from_bytes(payload)
    with exported, sspi_import.ImportedContext.from_exported(exported) as ctx:
        ...

Importing this package never loads a DLL: the first call does (secur32 on Windows, or
the library named by ``SSPI_IMPORT_LIBRARY`` / ``use_library``). Nor does it import its
modules: each public name is imported from its module the first time it is used (so the
pytest plugin, loaded in every pytest session of an environment that has the package,
costs nothing there until a test asks for it).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers know it
if TYPE_CHECKING:  # for type checkers; at run time __getattr__ imports on first use
    from ._handle import CleanupWarning
    from .adopt import (
        AdoptedContext,
        ForeignContextHandle,
        PyCtxtHandleLike,
        SecHandle,
        adopt_context,
    )
    from .bindings import ChannelBindings
    from .context import ContextSizes, SecurityContextBase
    from .credentials import Credentials, Identity
    from .errors import (
        BadBindingsError,
        BufferTooSmallError,
        CannotPackError,
        ContextExpiredError,
        DecryptFailureError,
        IncompleteMessageError,
        InsufficientMemoryError,
        InternalError,
        InvalidHandleError,
        InvalidParameterError,
        InvalidTokenError,
        LogonDeniedError,
        MessageAlteredError,
        NoAuthenticatingAuthorityError,
        NoCredentialsError,
        NotOwnerError,
        OutOfSequenceError,
        PackageNotFoundError,
        SspiError,
        SspiUnavailableError,
        StatusInfo,
        TargetUnknownError,
        TimeSkewError,
        UnknownCredentialsError,
        UnsupportedFunctionError,
        WrongPrincipalError,
        error_from_status,
        explain,
        status_info,
    )
    from .exported import ExportedContext, HasPid
    from .handoff import ExportFlags, ImportedContext, export_context
    from .handshake import RequestFlags, SecurityContext, loopback
    from .library import SspiLibrary, find_sspi_rs, library_description, use_library
    from .messages import BufferType, IovBuffer, IovResult, UnencryptedMessageError

__version__ = "0.1.0"

__all__ = [
    "AdoptedContext",
    "BadBindingsError",
    "BufferTooSmallError",
    "BufferType",
    "CannotPackError",
    "ChannelBindings",
    "CleanupWarning",
    "ContextExpiredError",
    "ContextSizes",
    "Credentials",
    "DecryptFailureError",
    "ExportFlags",
    "ExportedContext",
    "ForeignContextHandle",
    "HasPid",
    "Identity",
    "ImportedContext",
    "IncompleteMessageError",
    "InsufficientMemoryError",
    "InternalError",
    "InvalidHandleError",
    "InvalidParameterError",
    "InvalidTokenError",
    "IovBuffer",
    "IovResult",
    "LogonDeniedError",
    "MessageAlteredError",
    "NoAuthenticatingAuthorityError",
    "NoCredentialsError",
    "NotOwnerError",
    "OutOfSequenceError",
    "PackageNotFoundError",
    "PyCtxtHandleLike",
    "RequestFlags",
    "SecHandle",
    "SecurityContext",
    "SecurityContextBase",
    "SspiError",
    "SspiLibrary",
    "SspiUnavailableError",
    "StatusInfo",
    "TargetUnknownError",
    "TimeSkewError",
    "UnencryptedMessageError",
    "UnknownCredentialsError",
    "UnsupportedFunctionError",
    "WrongPrincipalError",
    "__version__",
    "adopt_context",
    "error_from_status",
    "explain",
    "export_context",
    "find_sspi_rs",
    "library_description",
    "loopback",
    "status_info",
    "use_library",
]

_HOMES = {  # each public name's module: imported the first time the name is used
    "_handle": "CleanupWarning",
    "adopt": "AdoptedContext ForeignContextHandle PyCtxtHandleLike SecHandle adopt_context",
    "bindings": "ChannelBindings",
    "context": "ContextSizes SecurityContextBase",
    "credentials": "Credentials Identity",
    "errors": (
        "BadBindingsError BufferTooSmallError CannotPackError ContextExpiredError "
        "DecryptFailureError IncompleteMessageError InsufficientMemoryError InternalError "
        "InvalidHandleError InvalidParameterError InvalidTokenError LogonDeniedError "
        "MessageAlteredError NoAuthenticatingAuthorityError NoCredentialsError NotOwnerError "
        "OutOfSequenceError PackageNotFoundError SspiError SspiUnavailableError StatusInfo "
        "TargetUnknownError TimeSkewError UnknownCredentialsError UnsupportedFunctionError "
        "WrongPrincipalError error_from_status explain status_info"
    ),
    "exported": "ExportedContext HasPid",
    "handoff": "ExportFlags ImportedContext export_context",
    "handshake": "RequestFlags SecurityContext loopback",
    "library": "SspiLibrary find_sspi_rs library_description use_library",
    "messages": "BufferType IovBuffer IovResult UnencryptedMessageError",
}


def _load(name: str) -> object:
    """The public name, or submodule, ``name``: imported on first use, then kept here."""
    module = next((m for m, names in _HOMES.items() if name in names.split()), None)
    missing = AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module is not None:  # importing a module runs it once, whichever thread asks first
        value = getattr(__import__(f"{__name__}.{module}", fromlist=["_"]), name)
    elif name.startswith("__"):
        raise missing
    else:  # a submodule: sspi_import.errors, sspi_import._raw, ...
        try:
            value = __import__(f"{__name__}.{name}", fromlist=["_"])
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the module is there and failed to import something else
            raise missing from None
    globals()[name] = value
    return value


def _dir() -> list[str]:
    return sorted({*globals(), *__all__})


if not TYPE_CHECKING:  # hidden from type checkers: an unknown name stays an error there
    __getattr__ = _load
    __dir__ = _dir
