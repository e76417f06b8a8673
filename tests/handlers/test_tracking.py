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


def test_signed_message_ids_lead_back_to_their_case_whatever_the_host():
    """A reply quotes our Message-ID; the HMAC, not the host, makes it ours."""
    secret = b"tracking-test-secret"
    for prefix in ("FK", ""):
        [tn] = tracking.new_tracking_nos(1, prefix=prefix)
        for domain in ("xinfang.example.gov.cn", "163.com"):
            mid = tracking.signed_message_id(secret, "ack", tn, domain)
            assert mid.endswith(f"@{domain}")
            assert tracking.verify_message_id(secret, f"<{mid}>", prefix) == tn
            assert tracking.signed_parts(secret, mid) == ("ack", tn.replace("-", ""))
            assert tracking.verify_message_id(b"another secret", mid, prefix) is None
            # the same layout with a signature we did not make
            local, host = mid.split("@")
            forged = local[:-16] + ("0" * 16 if local[-16:] != "0" * 16 else "1" * 16)
            assert tracking.signed_parts(secret, f"{forged}@{host}") is None


def test_a_digest_message_id_is_ours_but_about_no_case():
    secret = b"tracking-test-secret"
    mid = tracking.signed_message_id(secret, "digest", "2026-W47r0", "xinfang.example.gov.cn")
    assert tracking.signed_parts(secret, mid) == ("digest", "2026W47r0")
    assert tracking.verify_message_id(secret, mid, "") is None
    assert tracking.verify_message_id(secret, mid, "FK") is None
