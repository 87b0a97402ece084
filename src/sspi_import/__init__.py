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
the library named by ``SSPI_IMPORT_LIBRARY`` / ``use_library``).
"""

from __future__ import annotations

from .access_token import AccessToken
from .adopt import (
    AdoptedContext,
    ForeignContextHandle,
    PyCtxtHandleLike,
    SecHandle,
    adopt_context,
)
from .bindings import ChannelBindings
from .context import ContextSizes, Impersonation, SecurityContextBase
from .credentials import Credentials, Identity
from .errors import (
    BadBindingsError,
    BufferTooSmallError,
    CannotPackError,
    CleanupWarning,
    ContextExpiredError,
    DecryptFailureError,
    IncompleteMessageError,
    InheritedHandleError,
    InsufficientMemoryError,
    InternalError,
    InvalidHandleError,
    InvalidParameterError,
    InvalidTokenError,
    KdcInvalidRequestError,
    KdcUnableToReferError,
    KdcUnknownEtypeError,
    KerberosError,
    LogonDeniedError,
    MessageAlteredError,
    NoAuthenticatingAuthorityError,
    NoCredentialsError,
    NoKerberosKeyError,
    NotOwnerError,
    OutOfSequenceError,
    PackageNotFoundError,
    SspiError,
    SspiUnavailableError,
    StatusInfo,
    TargetUnknownError,
    TicketError,
    TimeSkewError,
    UnencryptedMessageError,
    UnknownCredentialsError,
    UnsupportedFunctionError,
    WrongPrincipalError,
    error_from_status,
    explain,
    status_info,
)
from .exported import ExportedContext
from .handoff import ExportFlags, ImportedContext, export_context
from .handshake import RequestFlags, SecurityContext, loopback
from .library import SspiLibrary, find_sspi_rs, library_description, use_library
from .messages import BufferType, IovBuffer, IovOutput, IovResult
from .processes import HasPid, start_python_child

__version__ = "0.1.0"

__all__ = [
    "AccessToken",
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
    "Impersonation",
    "ImportedContext",
    "IncompleteMessageError",
    "InheritedHandleError",
    "InsufficientMemoryError",
    "InternalError",
    "InvalidHandleError",
    "InvalidParameterError",
    "InvalidTokenError",
    "IovBuffer",
    "IovOutput",
    "IovResult",
    "KdcInvalidRequestError",
    "KdcUnableToReferError",
    "KdcUnknownEtypeError",
    "KerberosError",
    "LogonDeniedError",
    "MessageAlteredError",
    "NoAuthenticatingAuthorityError",
    "NoCredentialsError",
    "NoKerberosKeyError",
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
    "TicketError",
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
    "start_python_child",
    "status_info",
    "use_library",
]
