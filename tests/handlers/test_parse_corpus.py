"""Every message of the development corpus and of tests/data/realworld against its expectation
file, compared with the rules of shared/tools/check_emails.py (imported, not copied). The corpus is
kept in tests/data/emails (a copy of shared/data/emails) so the test never depends on a folder
outside the repository; the checker must be present in CI."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from handlers.loop_guard import machine_kind
from handlers.parse import parse_message, to_json
from handlers.step import LoopPolicy

SHARED = Path(__file__).parents[2] / ".." / "shared"
CORPUS = Path(__file__).parents[1] / "data" / "emails"
CHECKER = SHARED / "tools" / "check_emails.py"


def _checker():
    if not CHECKER.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHECKER} is missing in CI")
        pytest.skip(f"{CHECKER} not present")
    spec = importlib.util.spec_from_file_location("check_emails", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Real-world-shaped mail of issue #16 (charsets, header damage, MIME edge cases), same schema.
REALWORLD = Path(__file__).parents[1] / "data" / "realworld"
CASES = sorted(CORPUS.glob("*.eml")) + sorted(REALWORLD.glob("*.eml"))


@pytest.mark.skipif(not CASES, reason="development corpus not present")
@pytest.mark.parametrize("eml", CASES, ids=[c.stem for c in CASES])
def test_corpus_message_meets_expectations(eml: Path):
    expected = json.loads(eml.with_name(eml.stem + ".expected.json").read_text("utf-8"))
    parsed = parse_message(eml.read_bytes())
    auto, _reason = machine_kind(parsed, LoopPolicy())
    # Round-trip through JSON exactly as the parse-eml command prints it.
    got = json.loads(json.dumps(to_json(parsed, auto), ensure_ascii=False))
    assert _checker().compare(expected, got) == []
