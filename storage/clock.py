"""The service's clock: aware UTC datetimes, as every table stores them.

Its own module, without SQLAlchemy, so that code which only composes mail (the intake's
prepare processes) can stamp a date without loading the database layer (about 22 MB).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
