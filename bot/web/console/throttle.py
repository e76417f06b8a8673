"""Login throttling: after a few failures for a name or an address, a growing wait.

Counted per account name and per client address, so that guessing one account from many
addresses and many accounts from one address are both slowed. After ``free`` failures every further
failure doubles the wait (5 s, 10 s, 20 s … up to ``cap``); a success clears the name's and the
address's count. Kept in memory: a restart forgets it, which costs an attacker nothing they could
not get by waiting, and keeps logins working when the database is slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    free: int = 5
    base_seconds: float = 5.0
    cap_seconds: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _records: dict[str, _Record] = field(default_factory=dict)

    def wait_seconds(self, keys: list[str]) -> float:
        """How long the caller must still wait before trying these keys again (0 = go ahead)."""
        now = self.clock()
        waits = [r.locked_until - now for k in keys if (r := self._records.get(k))]
        return max([0.0, *waits])

    def failed(self, keys: list[str]) -> float:
        """Count a failure; return the wait it imposes (0 while under the free allowance)."""
        wait = 0.0
        for key in keys:
            rec = self._records.setdefault(key, _Record())
            rec.failures += 1
            extra = rec.failures - self.free
            if extra >= 0:
                delay = min(self.cap_seconds, self.base_seconds * 2 ** min(extra, 30))
                rec.locked_until = self.clock() + delay
                wait = max(wait, delay)
        if len(self._records) > 100_000:  # bounded memory under a spray of names
            self._records = {k: r for k, r in self._records.items()
                             if r.locked_until > self.clock()}
        return wait

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._records.pop(key, None)
