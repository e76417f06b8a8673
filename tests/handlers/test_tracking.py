"""Tracking numbers are read aloud on the phone and typed back in by citizens."""

from __future__ import annotations

from handlers import tracking


def test_numbers_drawn_together_are_distinct_and_readable():
    numbers = tracking.new_tracking_nos(500, prefix="ZF")
    assert len(set(numbers)) == 500
    for tn in numbers:
        prefix, first, second = tn.split("-")
        assert prefix == "ZF" and len(first) == len(second) == 4
        assert not set(first + second) & set("01OI")  # nothing to mishear on the phone
        # a citizen's reply that quotes it in lower case, with a space, is still matched
        assert tracking.find_tracking_no(f"回复：{tn.lower().replace('-', ' ', 1)}", "ZF") == tn


def test_numbers_are_random_not_a_sequence():
    a, b = tracking.new_tracking_nos(2, prefix="")
    assert a != b and len(a) == 9  # no prefix: just the two groups
    # every character position takes many values over a few hundred draws
    draws = tracking.new_tracking_nos(300, prefix="")
    assert all(len({d[i] for d in draws}) > 20 for i in (0, 3, 5, 8))
