"""Benchmark: seconds from an urgent letter's arrival to its alert at the SMTP server (issue #19:
target ≤ 60 s), against its acknowledgement's latency as the baseline.

Starts the service in this process (SQLite), a private Dovecot (IDLE on) and an SMTP sink on
loopback, with a duty list. Each sample is an unmistakably urgent letter that arrives either by
the web form or by an APPEND to the mailbox (picked up over IDLE); the clock starts at the POST or
the APPEND and stops when the message reaches the sink. A classifier that does not flag urgency
yet gives no alert: the script says so instead of a figure.

Prints figures, asserts nothing. ``--quick``: 2 samples per channel.
Run: ``.venv/bin/python bench/urgent_alert.py --quick``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from bot.app import start  # noqa: E402
from bot.config import Settings  # noqa: E402
from testing.dovecot import Dovecot  # noqa: E402
from testing.smtp import SmtpSink  # noqa: E402

DUTY = "duty@example.gov.cn"
TOKEN = re.compile(r'name="token" value="([^"]+)"')
LETTERS = ["我今晚就去市政府门口跳楼，执行款三年不给，我不想活了。",
           "我们村三十多人明天上午到市委门口集体上访，讨要被拖欠的征地补偿款。",
           "邻居正在家里打老婆，已经打了半个小时，现在还在打，快来人。"]


async def _arrival(sink: SmtpSink, seen: int, sender: str, timeout: float
                   ) -> tuple[float | None, float | None]:
    """Seconds until the acknowledgement to ``sender`` and the alert to the duty list arrive."""
    t0 = time.monotonic()
    ack = alert = None
    while time.monotonic() - t0 < timeout and (ack is None or alert is None):
        for m in sink.messages[seen:]:
            if ack is None and sender in m.rcpt_tos:
                ack = time.monotonic() - t0
            if alert is None and DUTY in m.rcpt_tos:
                alert = time.monotonic() - t0
        if ack is not None and alert is None and time.monotonic() - t0 > ack + 10:
            break  # the acknowledgement came, an alert would have come long before
        await asyncio.sleep(0.01)
    return ack, alert


async def _web(base: str, sink: SmtpSink, n: int) -> tuple[float | None, float | None]:
    sender = f"web{n}@qq.com"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/feedback") as resp:
            token = TOKEN.search(await resp.text())
        assert token
        seen = len(sink.messages)
        async with http.post(f"{base}/feedback", data={
                "token": token.group(1), "name": "", "email": sender, "phone": "",
                "subject": "求助", "body": LETTERS[n % len(LETTERS)]}) as resp:
            await resp.read()
    return await _arrival(sink, seen, sender, 90)


async def _imap(dovecot: Dovecot, sink: SmtpSink, n: int) -> tuple[float | None, float | None]:
    sender = f"mail{n}@163.com"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "ntzfwjgdw@163.com", "求助"
    msg.set_content(LETTERS[n % len(LETTERS)])
    seen = len(sink.messages)
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30) as c:
        c.login("mailbox", "secret")
        c.append("INBOX", msg.as_bytes())
    return await _arrival(sink, seen, sender, 90)


def _line(name: str, samples: list[tuple[float | None, float | None]]) -> None:
    acks = [a for a, _ in samples if a is not None]
    alerts = [b for _, b in samples if b is not None]
    ack = f"ack p50 {statistics.median(acks):.2f} s" if acks else "ack: none"
    if alerts:
        print(f"{name}: alert p50 {statistics.median(alerts):.2f} s, max {max(alerts):.2f} s "
              f"(target ≤ 60 s); {ack}; {len(alerts)}/{len(samples)} alerted")
    else:
        print(f"{name}: no alert in {len(samples)} letters (the classifier does not flag "
              f"urgency yet); {ack}")


async def main(samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, SmtpSink() as sink, Dovecot() as dovecot:
        dovecot.add_user("mailbox", "secret")
        var = Path(tmp) / "var"
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{tmp}/bench.db"},
            web={"host": "127.0.0.1", "port": 0, "secret_key": "bench-secret"},
            smtp={"host": "127.0.0.1", "port": sink.port, "from_addr": "ntzfwjgdw@163.com"},
            imap={"host": dovecot.host, "port": dovecot.port, "ssl": False, "starttls": False,
                  "user": "mailbox", "password": "secret", "idle": True},
            intake={"attachments_dir": str(var / "attachments"), "prepare_processes": 0},
            classifier={"model_dir": str(var / "models")}, urgent={"duty": [DUTY]},
            var_dir=str(var))
        service = await start(settings)
        try:
            web = [await _web(service.base_url, sink, n) for n in range(samples)]
            imap = [await _imap(dovecot, sink, n) for n in range(samples)]
        finally:
            await service.stop()
    _line("web form", web)
    _line("IMAP IDLE", imap)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 samples per channel")
    parser.add_argument("--n", type=int, default=10, help="samples per channel")
    args = parser.parse_args()
    asyncio.run(main(2 if args.quick else args.n))
