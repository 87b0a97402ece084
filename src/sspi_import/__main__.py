"""``python -m sspi_import``: the command line (``explain``, ``packages``, ``selftest``).

The ``sspi-import`` console script calls ``main`` here too; the work is in the ``cli``
package, one private module per command.
"""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
