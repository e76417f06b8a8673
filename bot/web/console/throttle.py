"""Login throttling that slows guessing without letting a stranger lock the owner out.

Three counts, each taken in :meth:`LoginThrottle.begin` in one synchronous step, before the
handler awaits anything: thirty wrong passwords sent at once are counted one by one, and only the
allowance is ever checked against a hash (checking first and counting after a database call let
all thirty through).

* per (account name, client address): after ``free`` failures a growing refusal (5 s, 10 s,
  20 s … up to ``cap_seconds``); this is what stops one address guessing one account;
* per client address: the same after ``free_per_address`` failures, whatever the names, so one
  address cannot spray a password over many accounts;
* per account name, from all addresses: never a refusal, only a growing delay before the check
  (``name_base_seconds`` doubling up to ``name_delay_cap``) once the name has had
  ``free_per_name`` failures. A refusal by name alone would let anyone lock out the admin by
  typing wrong passwords for that name; the delay slows a guesser spread over many addresses,
  while the owner, from an address of their own, still signs in.

An attempt is counted as a failure when it begins; a success takes its own count back and
clears the (name, address) record. Counts are forgotten ``cap_seconds`` after their last
failure. Kept in memory: a restart forgets them, which costs an attacker nothing they could not
get by waiting, and keeps logins working when the database is slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt as the throttle counted it."""

    name_key: str
    pair_key: str
    address_key: str
    refused_for: float  # > 0: refused without checking the password; retry after this long
    delay: float        # seconds to wait before checking the password (the name is under attack)
    address_locked_until: float = 0.0  # the address's lock before this attempt was counted


@dataclass
class LoginThrottle:
    free: int = 5
    free_per_address: int = 10
    free_per_name: int = 10
    base_seconds: float = 5.0
    cap_seconds: float = 15 * 60
    name_base_seconds: float = 0.5
    name_delay_cap: float = 8.0
    clock: Callable[[], float] = time.monotonic
    _records: dict[str, _Record] = field(default_factory=dict)

    def _record(self, key: str, now: float) -> _Record:
        rec = self._records.get(key)
        if rec is None or (rec.locked_until <= now and now - rec.last > self.cap_seconds):
            rec = self._records[key] = _Record()
        return rec

    def _lock(self, rec: _Record, allowance: int, now: float) -> None:
        extra = rec.failures - allowance
        if extra >= 0:
            rec.locked_until = now + min(self.cap_seconds, self.base_seconds * 2 ** min(extra, 30))

    def begin(self, name: str, address: str) -> Attempt:
        """Check and count one attempt for ``name`` from ``address``. Synchronous on purpose:
        no other request can run between the check and the count."""
        now = self.clock()
        name_key, pair_key = f"name:{name.lower()}", f"pair:{name.lower()}|{address}"
        address_key = f"ip:{address}"
        pair, addr = self._record(pair_key, now), self._record(address_key, now)
        refused = max(pair.locked_until, addr.locked_until) - now
        if refused > 0:
            return Attempt(name_key, pair_key, address_key, refused, 0.0)
        locked_before = addr.locked_until
        for rec, allowance in ((pair, self.free), (addr, self.free_per_address)):
            rec.failures += 1
            rec.last = now
            self._lock(rec, allowance, now)
        by_name = self._record(name_key, now)
        by_name.failures += 1
        by_name.last = now
        extra = by_name.failures - self.free_per_name
        delay = min(self.name_delay_cap, self.name_base_seconds * 2 ** min(extra - 1, 30)) \
            if extra > 0 else 0.0
        if len(self._records) > 100_000:  # bounded memory under a spray of names
            self._records = {k: r for k, r in self._records.items()
                             if r.locked_until > now or now - r.last <= self.cap_seconds}
        return Attempt(name_key, pair_key, address_key, 0.0, delay, locked_before)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear this name's record at this address, and take this
        attempt's count back from the address and the name (others' failures stay counted)."""
        self._records.pop(attempt.pair_key, None)
        addr = self._records.get(attempt.address_key)
        if addr is not None:  # a lock this attempt's count set is not the address's due
            addr.locked_until = attempt.address_locked_until
        for key in (attempt.address_key, attempt.name_key):
            rec = self._records.get(key)
            if rec is not None:
                rec.failures = max(0, rec.failures - 1)
                if rec.failures == 0 and rec.locked_until <= self.clock():
                    self._records.pop(key, None)
