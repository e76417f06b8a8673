"""A failing statement's error names the statement, never the values it carried: those errors
end up in log lines and in the tracebacks kept for staff, and the values are letters."""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy.exc import IntegrityError

from storage import submissions
from storage.db import make_engine, sessionmaker

SECRET = "实名举报：副局长周振华收受贿赂，举报人手机15906271834"


async def test_a_failed_insert_does_not_quote_the_letter(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with sessionmaker(engine).begin() as s:
            await submissions.add(s, tracking_no="FK-DUPL-0001", channel="web", text="第一封")
        with pytest.raises(IntegrityError) as info:
            async with sessionmaker(engine).begin() as s:
                await submissions.add(s, tracking_no="FK-DUPL-0001", channel="web", text=SECRET,
                                      from_addr="zhou.reporter@163.com")
    finally:
        await engine.dispose()
    logged = "".join(traceback.format_exception(info.value))
    assert "INSERT INTO submissions" in logged  # the error still says what failed
    for secret in ("周振华", "15906271834", "zhou.reporter@163.com"):
        assert secret not in logged
