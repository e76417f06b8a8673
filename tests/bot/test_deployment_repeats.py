"""Acceptance: repeat letters (并单) through a real ``feedback-bot serve`` process configured as
the report's deployment (its 163.com mailbox, a Maildir source, an aiosmtpd relay, the intake's
prepare process signing letters), checked from outside through the API only.

The same citizen sends the same letter twice (two mails, two Message-IDs): the second's
``related`` names the first. Another citizen, at qq.com, writes about the same event in their
own words: linked to the first. An unrelated letter is linked to nothing. Merging the reworded
letter into the first answers 200, and its citizen receives the notice naming the first's
number.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp

from testing.serve import deployment
from testing.smtp import SmtpSink
from tests.bot.helpers import wait_mail
from tests.bot.sources.mailtools import provider_msgid, until
from tests.bot.test_deployment_163 import CITIZEN, api_items, citizen_mail, deliver

LETTER = ("我们村东头的排灌站去年冬天就坏了，水泵一直没人修，今年春耕马上开始，几十亩田等着放水。"
          "村委会说报上去了，镇水利站说没有维修经费。希望有关部门尽快把水泵修好。")
REWORDED = ("东头那个排灌站的水泵从去年冬天坏到现在，一直没修好。马上要春耕了，我们好几十亩地"
            "等着用水，村里说已经上报，水利站说没钱修。请领导督促尽快维修。")
UNRELATED = "区法院立案窗口要求提交的材料太多，网上立案系统也经常打不开，希望改进。"
OTHER_CITIZEN = "liu.dama@qq.com"
THIRD_CITIZEN = "zhao.qiang@163.com"


async def _get(base: str, token: str, tn: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(
            f"{base}/api/v1/submissions/{tn}", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 200
        return await resp.json()


async def test_repeats_are_linked_and_merged_through_serve(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    maildir = tmp_path / "maildir"
    site = deployment(tmp_path, db_url, smtp_sink.port, maildir=maildir)
    token, base = site.api_token(), site.base_url
    async with site.serving():
        letters = [("1764100000.M1P1.mx.163", CITIZEN, "村里排灌站水泵坏了没人修", LETTER),
                   ("1764100100.M2P1.mx.163", CITIZEN, "村里排灌站水泵坏了没人修", LETTER),
                   ("1764100200.M3P1.mx.qq", OTHER_CITIZEN, "排灌站水泵还没修", REWORDED),
                   ("1764100300.M4P1.mx.163", THIRD_CITIZEN, "网上立案", UNRELATED)]
        for n, (name, sender, subject, body) in enumerate(letters, start=1):
            raw = citizen_mail(subject, body, msgid=provider_msgid(sender))
            if sender != CITIZEN:
                raw = raw.replace(CITIZEN.encode(), sender.encode())
            deliver(maildir, name, raw)

            async def filed(n: int = n) -> bool:
                return len(await api_items(base, token, "all")) >= n

            await until(filed, timeout=60, what=f"letter {n} filed")
        await wait_mail(smtp_sink, 4, timeout=60)  # the acknowledgements
        items = sorted(await api_items(base, token, "all"), key=lambda i: i["id"])
        first, second, reworded, unrelated = (i["tracking_no"] for i in items)

        # The second copy names the first (and the reworded letter, which repeats both).
        got = await _get(base, token, second)
        assert got["related"] == [first, reworded]
        assert got["links"][0]["kind"] == "sender"
        got = await _get(base, token, reworded)
        assert got["related"] == [first, second]
        assert {link["kind"] for link in got["links"]} == {"content"}
        assert (await _get(base, token, unrelated))["related"] == []

        async with aiohttp.ClientSession() as http, http.post(
                f"{base}/api/v1/submissions/{reworded}/actions",
                json={"action": "merge", "into": first},
                headers={"Authorization": f"Bearer {token}"}) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        assert answer["status"] == "merged" and answer["merged_into"] == first
        mails = await wait_mail(smtp_sink, 5, timeout=60)
        [notice] = [m for m in mails if m.rcpt_tos == [OTHER_CITIZEN]
                    and "并案办理告知书" in str(m.message["Subject"])]
        assert first in notice.message.get_body(("plain",)).get_content()
