"""The ``sspi-import`` command line: explain status codes, list packages, self-test a provider.

``python -m sspi_import`` and the ``sspi-import`` console script both call ``main``, the
one public name here; the commands live in private modules (``_explain``, ``_packages``,
``_selftest``), beside the JSON Schema of each command's ``--json`` document
(``explain.schema.json``, ``packages.schema.json``, ``selftest.schema.json``).

Exit status: 0 success; 1 a failed step (an unknown code, a failed selftest step, a
provider that cannot be used); 2 a usage error.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
