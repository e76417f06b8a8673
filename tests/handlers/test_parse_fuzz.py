"""parse_message on mutated corpus mail: it must never raise, never hang, and always return text
that is clean Unicode (no NUL, no BOM, no lone surrogates) and serialisable as the CLI prints it."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.loop_guard import bounced_message_ids, machine_kind
from handlers.parse import parse_message, to_json
from handlers.step import LoopPolicy
from testing.mutations import MUTATIONS, PARSE_SECONDS, SAMPLES


@pytest.mark.skipif(not SAMPLES, reason="development corpus not present")
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(range(len(SAMPLES) or 1)),
       steps=st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 10**6),
                                st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_mail_never_breaks_the_parser(sample, steps):
    raw = SAMPLES[sample]
    for mutate, pos, value in steps:
        raw = mutate(raw, pos, value)
    start = time.perf_counter()
    parsed = parse_message(raw)
    auto, _reason = machine_kind(parsed, LoopPolicy())
    bounced_message_ids(parsed)
    assert time.perf_counter() - start < PARSE_SECONDS
    assert isinstance(parsed.text, str) and isinstance(parsed.new_text, str)
    for text in (parsed.text, parsed.subject, parsed.from_name or ""):
        assert "\x00" not in text and "\ufeff" not in text
    # The CLI prints this; lone surrogates would make the UTF-8 encoding fail.
    json.dumps(to_json(parsed, auto), ensure_ascii=False).encode("utf-8")
