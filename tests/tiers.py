"""Test tiers: every test is ``unit``, ``integration`` or ``acceptance`` (procrastinate's three).

``pytest -m unit`` is the fast tier a developer runs while editing. The tier is derived, so a new
test is filed without anyone remembering a marker (an explicit marker on the test wins):
- acceptance: the test starts a real ``feedback-bot serve`` process: its function, a fixture
  or a test helper it calls starts a child process with ``"serve"`` on the command line, or
  builds the fault harness's ``Serve``;
- integration: it uses a real server through a fixture (Dovecot, PostgreSQL, the SMTP sink,
  Chromium), directly or through another fixture such as ``db_url``, or starts any other child
  process (the ``feedback-bot`` CLI, a fresh interpreter, a process pool);
- unit: everything else: in-process, no server, no child process.
The source is read with ``ast`` (the same way as tests/test_layering.py), so the tier follows
what the test does, not where it lives.
Registered by the root conftest (``pytest_plugins``); the markers are declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest

TIERS = ("unit", "integration", "acceptance")
# Fixtures that start a real server (tests/fixtures_servers.py, tests/conftest.py).
SERVER_FIXTURES = frozenset({
    "postgres", "pg_template", "db_url", "dovecot", "dovecot_tls", "imap_account",
    "imap_tls_account", "token_introspection", "smtp_sink", "browser", "page",
})


REPO = Path(__file__).resolve().parents[1]
OURS = (REPO / "tests", REPO / "testing")


def _ours(func: Any) -> bool:
    """A function of tests/ or testing/ (by file: pytest may import test modules by path)."""
    code = getattr(inspect.unwrap(func), "__code__", None) if callable(func) else None
    path = Path(code.co_filename).resolve() if code is not None else None
    return path is not None and any(path.is_relative_to(d) for d in OURS)


PROCESS_NAMES = frozenset({"subprocess", "multiprocessing", "ProcessPoolExecutor"})


def _kinds(func: Any, seen: set[Any] | None = None) -> frozenset[str]:
    """What ``func`` starts: ``"process"`` (a child process), ``"serve"`` (the service).

    Read from its source, following calls to functions of ``tests``/``testing`` modules.
    """
    func = inspect.unwrap(func)
    seen = set() if seen is None else seen
    if func in seen or not inspect.isfunction(func):
        return frozenset()
    seen.add(func)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    kinds: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "Serve":  # the fault harness's process
            kinds |= {"process", "serve"}
        elif isinstance(node, ast.Constant) and node.value == "serve":
            kinds.add("serve")
        elif (isinstance(node, ast.Name) and node.id in PROCESS_NAMES) or (
                isinstance(node, ast.Attribute) and node.attr == "executable"):
            kinds.add("process")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = func.__globals__.get(node.func.id)
            if _ours(target):
                kinds |= _kinds(target, seen)
    return frozenset(kinds)


def _fixture_functions(item: pytest.Item) -> list[Any]:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else []
    return [d.func for group in defs for d in group if _ours(d.func)]


def tier(item: pytest.Item) -> str:
    """The tier of one collected test (see the module docstring)."""
    for name in TIERS:
        if item.get_closest_marker(name):
            return name
    kinds: set[str] = set()
    for func in [getattr(item, "function", None), *_fixture_functions(item)]:
        if func is not None:
            kinds |= _kinds(func)
    if {"process", "serve"} <= kinds:
        return "acceptance"
    if "process" in kinds or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "integration"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = tier(item)
        if not item.get_closest_marker(name):
            item.add_marker(name)
