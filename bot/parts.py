"""Optional parts of the service: command families, web parts, background tasks.

The composition code lists parts by module name and asks for each; a part that is not installed is
skipped, but a part that is present and fails to import is an error, never silently left out.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType


def present(names: tuple[str, ...]) -> Iterator[ModuleType]:
    """The modules of ``names`` that exist, imported, in order."""
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
