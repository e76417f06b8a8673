"""The layers hold: ``bot → handlers → storage``, and handlers own no socket.

style.md: dependencies point one way; ``storage`` imports nothing of ours, ``handlers`` never
imports the web, SMTP or IMAP client libraries (sockets belong to ``bot/``). Every module's
imports are read with ``ast`` (nothing is imported, so no import-time side effects), including
imports inside functions and under ``TYPE_CHECKING``: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("bot", "handlers", "storage")
# What each layer must not import (a name and everything under it).
FORBIDDEN = {
    "storage": ("bot", "handlers"),
    "handlers": ("bot", "aiohttp", "aiosmtplib", "imapclient"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, made absolute (``from a import b``: ``a.b`` if a module)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # ``from pkg import submodule`` depends on the submodule, not on pkg/__init__
                # (Python runs that first, but a package importing its own parts is no cycle).
                full = ".".join(filter(None, [base, alias.name]))
                names.add(full if is_module(full) or not base else base)
    return names


def modules(layer: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((REPO / layer).rglob("*.py"))
            if "migrations" not in p.relative_to(REPO).parts or layer != "storage"}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(layer: str) -> list[str]:
    out = []
    for mod, path in modules(layer).items():
        for name in sorted(imported_names(path)):
            out += [f"{mod} imports {name}" for bad in FORBIDDEN[layer] if under(name, bad)]
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer: str):
    assert violations(layer) == []


def test_the_check_sees_every_kind_of_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A bad import at module level, in a function, relative, or deferred must all be found:
    # check the reader on a throw-away tree shaped like ours.
    pkg = tmp_path / "handlers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import aiohttp.web\n")
    (pkg / "b.py").write_text("def f():\n    from bot.config import Settings\n")
    (pkg / "c.py").write_text("from .. import bot\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    import imapclient\n")
    (pkg / "e.py").write_text("import aiohttp_jinja2\nfrom storage import db\nimport botany\n")
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert violations("handlers") == [
        "handlers.a imports aiohttp.web",
        "handlers.b imports bot.config",
        "handlers.c imports bot",
        "handlers.d imports imapclient",
    ]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively unrolled)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_our_modules():
    ours = {m: p for layer in LAYERS for m, p in modules(layer).items()}
    graph = {m: {n for n in imported_names(p) if n in ours and n != m} for m, p in ours.items()}
    assert _cycles(graph) == []
