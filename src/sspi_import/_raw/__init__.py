"""The private raw layer: ctypes declarations exact to the Windows SDK headers, and nothing else.

- ``structs``: the structures (``SecHandle``, ``SecBuffer``...) under their C names;
- ``constants``: the flag and attribute values the library passes;
- ``status_codes``: every ``SEC_E_*``/``SEC_I_*`` of winerror.h (generated);
- ``functions``: the prototypes, declared once through one factory;
- ``loader``: opening a DLL and binding a prototype to it (``sspi_import.library``
  decides which library, lazily).
"""
