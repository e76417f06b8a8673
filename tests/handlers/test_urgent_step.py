"""The urgent step on the real database (SQLite and PostgreSQL): a letter the classifier calls
urgent is filed with the mark and its reasons, and its alert to the duty list is queued in the
same transaction, at the outbox's top priority, naming the tracking number, the category and the
console link and nothing of the writer or the letter; a 举报's alert says only "举报件"."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

from sqlalchemy import select

from bot.runtime import mail_templates
from handlers import pipeline, urgent
from handlers.classify.result import Classification
from handlers.step import Context, Intake, LoopPolicy
from storage.models import Event, Outbox, Submission

SECRET = b"s" * 32
DUTY = ("duty1@example.gov.cn", "duty2@example.gov.cn")
NAME, PHONE, ADDRESS = "孙建华", "13912345678", "崇川区青年路88号3幢502室"
BODY = f"我叫{NAME}，住{ADDRESS}，电话{PHONE}。执行款拖了三年，我今晚就去市政府门口跳楼。"


def _result(*, urgent_flag: bool = True, category: str = "3", kind: str = "complaint"
            ) -> Classification:
    # The classifier's cues quote the letter ("kind：words"); only their kinds may reach an alert.
    cues = ("轻生：跳楼", "聚集上访：去市政府门口") if urgent_flag else ()
    return Classification(category=category, measure=None, kind=kind, confidence=0.9,
                          top=[(category, 0.9)], explanation="", model_version="m",
                          taxonomy_version="t", urgent=urgent_flag, urgent_score=0.9,
                          urgent_cues=cues)


def _ctx(session) -> Context:  # type: ignore[no-untyped-def]
    return Context(session=session, secret=SECRET, public_url="https://fk.example.cn",
                   from_addr="ntzfwjgdw@163.com", from_name="市委政法委",
                   loop_policy=LoopPolicy(own_addresses=frozenset({"ntzfwjgdw@163.com"}),
                                          secret=SECRET),
                   templates=mail_templates(), message_id_domain="fk.example.cn",
                   urgent_duty=DUTY)


def _intake(n: int, result: Classification, *, report: bool = False) -> Intake:
    fields = {"name": NAME, "email": f"sun{n}@qq.com", "phone": PHONE, "subject": "执行款",
              "body": BODY, **({"report": "real"} if report else {})}
    intake = Intake(raw_id=n, channel="web", received_at=datetime.now(UTC),
                    form={"fields": fields})
    intake.classification = result
    return intake


def _texts(row: Outbox) -> str:
    msg = BytesParser(policy=policy.default).parsebytes(row.message)
    parts = [str(msg["Subject"]), str(msg["To"])]
    parts += [p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"]
    return "\n".join(parts)


async def _file(db, intakes: list[Intake]) -> None:  # type: ignore[no-untyped-def]
    async with db.begin() as session:
        await pipeline.run(intakes, _ctx(session))


async def test_an_urgent_letter_is_marked_and_its_alert_queued_first_without_personal_data(db):
    calm = _intake(1, _result(urgent_flag=False))
    alarm = _intake(2, _result())
    await _file(db, [calm, alarm])
    async with db() as session:
        subs = {s.id: s for s in await session.scalars(select(Submission))}
        rows = list(await session.scalars(select(Outbox).order_by(
            Outbox.priority.desc(), Outbox.id)))
        received = list(await session.scalars(select(Event).where(Event.action == "received")))
    assert alarm.submission_id and calm.submission_id
    sub = subs[alarm.submission_id]
    assert sub.urgent and sub.urgent_reasons == ["self_harm", "gathering"]
    assert sub.urgent_by == "classifier" and sub.urgent_at is not None
    assert not subs[calm.submission_id].urgent
    alerts = [r for r in rows if r.purpose == urgent.ALERT]
    assert sorted(r.recipient for r in alerts) == sorted(DUTY)
    assert all(r.submission_id == sub.id and r.priority == urgent.PRIORITY for r in alerts)
    for row in alerts:
        text = _texts(row)
        assert sub.tracking_no in text and f"https://fk.example.cn/console/s/{sub.id}" in text
        assert "（3）" in text or "第3类" in text  # the category
        assert "自伤风险" in text and "聚集上访" in text
        for private in (NAME, PHONE, "青年路", "sun2@qq.com", "执行款", "跳楼"):
            assert private not in text
    assert any(e.detail.get("urgent") == ["self_harm", "gathering"] for e in received)


async def test_a_reports_alert_names_only_the_number(db):
    report = _intake(3, _result(kind="report"), report=True)
    await _file(db, [report])
    async with db() as session:
        sub = await session.get(Submission, report.submission_id)
        alerts = list(await session.scalars(select(Outbox).where(Outbox.purpose == urgent.ALERT)))
    assert sub is not None and sub.restricted and sub.urgent
    assert len(alerts) == len(DUTY)
    for row in alerts:
        text = _texts(row)
        assert sub.tracking_no in text and "举报件" in text
        for hidden in ("第3类", "（3）", "自伤风险", "聚集上访", NAME, PHONE, "执行款"):
            assert hidden not in text


async def test_spam_and_an_unaware_classifier_are_never_urgent(db):
    spam = _intake(4, _result(category="spam", kind="spam"))
    plain = _intake(5, Classification(category="3", measure=None, kind="complaint",
                                      confidence=0.9, top=[("3", 0.9)], explanation="",
                                      model_version="m", taxonomy_version="t"))
    await _file(db, [spam, plain])
    async with db() as session:
        urgent_subs = list(await session.scalars(select(Submission).where(
            Submission.urgent.is_(True))))
        alerts = list(await session.scalars(select(Outbox).where(Outbox.purpose == urgent.ALERT)))
    assert urgent_subs == [] and alerts == []
