"""What staff do to a submission: reclassify, move through the status workflow, assign, note,
mark spam, reply to the citizen. Each is a POST that writes an event (actor = staff name) in the
same transaction as the change, then redirects back to the submission (post/redirect/get).

The status workflow (statuses, transitions, which need a reason) is ``storage.workflow``'s. A
form carries the status it was rendered with, so two people acting at once cannot
silently overwrite each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime import Runtime
from bot.web.console import auth, present
from bot.web.console.security import restricted, sees_reports
from bot.web.keys import RUNTIME
from bot.web.params import ascii_int, path_id
from handlers import acknowledge, casework, public_reply, reply, urgent
from storage import events, labels, public_replies, repeats, review_list, workflow
from storage import urgent as urgent_store
from storage.clock import utcnow
from storage.models import Submission, User

TEXT_MAX = 10_000


class ActionError(Exception):
    """The request cannot be done as asked; the message is shown to staff."""


def kinds_for_form() -> list[tuple[str, str]]:
    return [(k, v) for k, v in present.KIND.items() if k != "spam"]


def _field(data: MultiDictProxy, name: str, limit: int = 200) -> str:
    return str(data.get(name, "")).strip()[:limit]


async def _reclassify(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                      rt: Runtime) -> str:
    category = _field(data, "category")
    measure = _field(data, "measure") or None
    kind = _field(data, "kind") or None
    if category not in {c.id for c in present.categories()}:
        raise ActionError("请选择一个类别。")
    if measure and measure not in present.measure_ids():
        raise ActionError("措施编号无效。")
    note = ""
    if measure and measure.split(".")[0] != category:
        # Without script the measure list cannot follow the category choice; the category is
        # what staff changed, so a stale measure is dropped, and said so.
        measure, note = None, "所选措施不属于新类别，措施改为不指定。"
    if kind and kind not in present.KIND:
        raise ActionError("来信性质无效。")
    if category == "spam":
        measure, kind = None, "spam"
    before = {"category": sub.category, "measure": sub.measure, "kind": sub.kind}
    tax = present.taxonomy()  # the categories on the form are the configured report's
    await labels.confirm(db, sub, category=category, measure=measure, kind=kind, user_id=user.id,
                         taxonomy_version=tax.version if tax else None)
    await events.record(db, sub.id, user.name, "reclassify",
                        {"from": before, "to": {"category": category, "measure": measure,
                                                "kind": kind}})
    if kind == "report" and not sub.restricted:
        # Staff calling it a 举报 restricts it; another kind never lifts a restriction (only
        # the explicit, reasoned lift below does).
        await _set_restriction(db, sub, user, True, "性质改为举报")
        note += "此件已设为举报（内容仅主管、管理员可见）。"
    if sub.auto and category != "spam":
        note += await _not_machine_mail(db, sub, user, rt)
    return "分类已更新，并记为人工确认的标注。" + note


async def _set_restriction(db: AsyncSession, sub: Submission, user: User, restricted: bool,
                           reason: str) -> None:
    """Set or lift a letter's restriction, with the audit event in the same transaction."""
    before = {"restricted": sub.restricted, "by": sub.restricted_by}
    await review_list.update_fields(db, sub.id, restricted=restricted,
                              restricted_by="staff" if restricted else None)
    await events.record(db, sub.id, user.name, "restrict" if restricted else "unrestrict",
                        {"from": before, "reason": reason})


async def _not_machine_mail(db: AsyncSession, sub: Submission, user: User, rt: Runtime) -> str:
    """Staff gave a letter filed as machine mail a category: it is a citizen's after all. It
    joins the queue and gets the acknowledgement it was denied (cap and suppression apply)."""
    await review_list.update_fields(db, sub.id, auto=None)
    await events.record(db, sub.id, user.name, "not-auto", {"auto": sub.auto})
    skipped = await acknowledge.acknowledge_later(
        rt.context(db), submission_id=sub.id, tracking_no=sub.tracking_no, channel=sub.channel,
        received_at=sub.received_at, from_name=sub.from_name, from_addr=sub.from_addr,
        subject=sub.subject, text=sub.new_text or sub.text, message_id=sub.message_id)
    if skipped is None:
        return "此件已移出自动邮件，进入待办列表，并已向来信人发送受理回执。"
    why = _SKIPPED.get(skipped, skipped)
    return f"此件已移出自动邮件，进入待办列表；未发送受理回执（{why}）。"


_SKIPPED = {"no address": "来信人没有留下电子邮箱",
            "our own address": "发件地址是本单位邮箱",
            "address suppressed after a bounce": "该邮箱近期退信",
            "daily cap for this address": "该邮箱今日回执已达上限"}


def casework_request(data: MultiDictProxy | dict[str, str], action: str) -> casework.Request:
    """A casework action as the console's form or the API's JSON asks for it."""
    return casework.Request(action=action, **{k: str(data.get(k, "")) for k in FIELDS})


FIELDS = ("reason", "unit", "due", "reply", "days", "result", "into")


async def _status(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                  rt: Runtime) -> str:
    """A step of the case (``storage.workflow.ACTIONS``): the form names the action, or the
    status it wants (older forms); the rules, history and notice are ``handlers.casework``'s."""
    current = _field(data, "current")
    if current and current != sub.status:
        raise ActionError("此件状态刚被他人更改，请查看最新状态后再操作。")
    name = _field(data, "action")
    target = _field(data, "to")
    if not name and target:
        name = workflow.action_to(sub.status, target) or ""
        if not name:
            raise ActionError(f"不能从“{workflow.status_name(sub.status)}”改为该状态。")
    try:
        outcome = await casework.apply(rt.context(db), sub, casework_request(data, name),
                                       actor=user.name, units=rt.settings.casework.units,
                                       reads_reports=sees_reports(user))
    except casework.WorkflowError as exc:
        raise ActionError(str(exc)) from exc
    return outcome.message


async def _assign(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                  rt: Runtime) -> str:
    raw = _field(data, "assignee")
    staff = {u.id: u for u in await review_list.staff(db)}
    target = staff.get(ascii_int(raw) or 0)
    if raw and target is None:
        raise ActionError("没有这位工作人员。")
    await review_list.update_fields(db, sub.id, assignee_id=target.id if target else None)
    await events.record(db, sub.id, user.name, "assign", {"to": target.name if target else None})
    return f"已指派给 {target.name}。" if target else "已取消指派。"


async def _note(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                rt: Runtime) -> str:
    text = _field(data, "text", TEXT_MAX)
    if not text:
        raise ActionError("备注不能为空。")
    await events.record(db, sub.id, user.name, "note", {"text": text})
    return "备注已保存。"


async def _spam(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                rt: Runtime) -> str:
    if _field(data, "spam") == "1":
        before = {"category": sub.category, "measure": sub.measure, "kind": sub.kind}
        await labels.confirm(db, sub, category="spam", measure=None, kind="spam",
                             user_id=user.id)
        await events.record(db, sub.id, user.name, "spam", {"from": before})
        return "已标记为垃圾信息（默认列表中不再显示）。"
    # Not spam: we do not know the right category yet, so back to review, without a label.
    ranked = [c for c, _p in (sub.top or {}).get("top") or [] if c != "spam"]
    category = str(ranked[0]) if ranked else "unclassified"
    await review_list.update_fields(db, sub.id, category=category, measure=None,
                              kind=None if sub.kind == "spam" else sub.kind, needs_review=True)
    await events.record(db, sub.id, user.name, "not-spam", {"category": category})
    return "已取消垃圾信息标记，请确认分类。"


async def _restriction(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                       rt: Runtime) -> str:
    """Supervisors and admins set or lift a letter's restriction, always with a reason (the
    caller refuses everyone else); both are audited."""
    want = _field(data, "restricted")
    if want not in ("0", "1"):
        raise ActionError("请选择“设为举报”或“解除举报保密”。")
    reason = _field(data, "reason", 2000)
    if not reason:
        raise ActionError("请填写理由，理由会记入办理记录。")
    target = want == "1"
    if target == sub.restricted:
        raise ActionError("此件已经是举报（保密）。" if target else "此件本来就不是保密件。")
    await _set_restriction(db, sub, user, target, reason)
    if target:
        return "已设为举报：内容、来信人和附件仅主管、管理员可见。"
    return "已解除举报保密：所有工作人员都能看到此件内容。"


async def _reply(db: AsyncSession, sub: Submission, user: User, data: MultiDictProxy,
                 rt: Runtime) -> str:
    body = str(data.get("body", "")).strip()[:TEXT_MAX]
    if not body:
        raise ActionError("答复内容不能为空。")
    if not sub.from_addr or "@" not in sub.from_addr:
        raise ActionError("来信人没有留下电子邮箱，无法通过邮件答复。")
    message_id = await reply.enqueue(rt.context(db), sub, body)
    await events.record(db, sub.id, user.name, "reply", {"message_id": message_id, "text": body})
    return "答复已放入发送队列。"


async def _publish(db: AsyncSession, sub: Submission, user: User, data: Any,
                   rt: Runtime) -> str:
    """公开答复: the question and answer as the supervisor checked them go on /replies."""
    why = public_reply.refusal(sub)
    if why:
        raise ActionError(why)
    question = str(data.get("question", "")).strip()[:public_reply.TEXT_MAX]
    answer = str(data.get("answer", "")).strip()[:public_reply.TEXT_MAX]
    if not question or not answer:
        raise ActionError("公开前请确认来信内容和答复内容，两项都不能为空。")
    if public_reply.unmasked(question) or public_reply.unmasked(answer):
        raise ActionError("审核稿中仍有电话、身份证号、邮箱、账号或门牌等个人信息，"
                          "请删去或改为 * 号后再公开。")
    await public_replies.publish(db, sub, question=question, answer=answer, actor=user.name)
    return "已审核并公开，可在公开答复页面查看。"


async def _unpublish(db: AsyncSession, sub: Submission, user: User, data: Any,
                     rt: Runtime) -> str:
    if not await public_replies.withdraw(db, sub, user.name):
        raise ActionError("此件没有公开。")
    return "已从公开答复页面撤下。"


async def _unlink(db: AsyncSession, sub: Submission, user: User, data: Any,
                  rt: Runtime) -> str:
    """Staff judge two linked cases unrelated: the link goes, both histories say so. A link to
    a 举报 is not there for a viewer who may not read it (``storage.repeats`` rows carry each
    case's restriction), so neither is its removal."""
    other_id = ascii_int(_field(data, "other"))
    links = {link.id: link for link in await repeats.links_of(db, sub.id)}
    link = links.get(other_id or 0)
    if link is None or (link.restricted and not sees_reports(user)):
        raise ActionError("这两件来信之间没有关联。")
    await repeats.unlink(db, sub.id, link.id)
    # Each history names the other case only where its readers could see the link: a 举报's
    # number stays out of an ordinary letter's history.
    await events.record(db, sub.id, user.name, "unlink",
                        {"tracking_no": link.tracking_no} if sub.restricted or not link.restricted
                        else {})
    await events.record(db, link.id, user.name, "unlink",
                        {"tracking_no": sub.tracking_no} if link.restricted or not sub.restricted
                        else {})
    return f"已取消与 {link.tracking_no} 的关联。"


async def _urgent(db: AsyncSession, sub: Submission, user: User, data: Any,
                  rt: Runtime) -> str:
    """Mark a letter urgent (any role that may act on it: the alert goes to the duty list at
    once) or lift the mark (supervisors and admins only, with a reason); both audited."""
    want = _field(data, "urgent")
    if want == "1":
        reason = _field(data, "reason", 32)
        code = reason if reason in urgent.REASONS else urgent.STAFF_REASON
        if not await urgent_store.mark(db, sub.id, [code], "staff"):
            raise ActionError("此件已经是紧急来信。")
        await events.record(db, sub.id, user.name, "urgent", {"reasons": [code]})
        sent = await urgent.queue_alert(
            rt.context(db), submission_id=sub.id, tracking_no=sub.tracking_no,
            category=sub.category, taxonomy_version=sub.taxonomy_version,
            restricted=bool(sub.restricted), reasons=[code], actor=user.name)
        return ("已标记为紧急来信，置顶显示" + (f"，并已提醒 {sent} 位值班人员。" if sent
                                           else "；未配置值班人员邮箱，未发提醒邮件。"))
    if want != "0":
        raise ActionError("请选择“标记为紧急”或“解除紧急标记”。")
    if not sees_reports(user):
        raise Refused(403)  # a reviewer may raise the alarm, only a supervisor lowers it
    reason = _field(data, "reason", 2000)
    if not reason:
        raise ActionError("解除紧急标记须填写理由，理由会记入办理记录。")
    if not await urgent_store.clear(db, sub.id):
        raise ActionError("此件本来就不是紧急来信。")
    await events.record(db, sub.id, user.name, "not-urgent", {"reason": reason})
    return "已解除紧急标记。"


async def _take(db: AsyncSession, sub: Submission, user: User, data: Any,
                rt: Runtime) -> str:
    """我来处理: who took an urgent letter's alert, and when (shown, audited); the first one
    to take it keeps it."""
    if not sub.urgent:
        raise ActionError("此件不是紧急来信。")
    if not await urgent_store.take(db, sub.id, user.name, utcnow()):
        raise ActionError(f"此件已由 {sub.urgent_taken_by or '他人'} 接手。")
    await events.record(db, sub.id, user.name, "urgent-taken", {})
    return "已记录由您接手处理此件紧急来信。"


# data: the console form's MultiDictProxy or the write API's dict; an action only .get()s it.
ACTIONS: dict[str, Callable[[AsyncSession, Submission, User, Any, Runtime], Awaitable[str]]]
ACTIONS = {"unlink": _unlink, "classify": _reclassify, "status": _status, "assign": _assign, "note": _note,
           "spam": _spam, "reply": _reply, "restriction": _restriction, "publish": _publish,
           "unpublish": _unpublish, "urgent": _urgent, "take": _take}
# Reviewers get a 403 whatever the letter: publishing speaks for the commission in public.
SUPERVISOR_ACTIONS = ("restriction", "publish", "unpublish")


class Refused(Exception):
    """The viewer may not do this to this letter (403), or there is no such letter (404)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def perform(rt: Runtime, user: User, name: str, find: Callable[[AsyncSession], Awaitable[
        Submission | None]], data: MultiDictProxy | dict[str, str]) -> tuple[int, str]:
    """Do action ``name`` to the letter ``find`` gives, as ``user``: (its id, the message for
    the user). The console's forms and the write API both come here, so the same roles, rules
    and audit apply. Raises :class:`Refused` (403/404) or :class:`ActionError`."""
    action = ACTIONS.get(name)
    if action is None:
        raise Refused(404)
    if name in SUPERVISOR_ACTIONS and not sees_reports(user):
        raise Refused(403)
    async with rt.sessions.begin() as db:
        sub = await find(db)
        if sub is None:
            raise Refused(404)
        if restricted(sub, user):
            raise Refused(403)
        sid = sub.id
        message = await action(db, sub, user, data, rt)
    if name in ("reply", "classify", "status", "urgent"):  # mail may be waiting: a reply, a notice, an
        rt.outbox_wakeup.set()                     # acknowledgement a machine mail was denied
    return sid, message


async def act(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    user = auth.current(request)
    sid = path_id(request)
    data = await request.post()
    try:
        _sid, message = await perform(rt, user, request.match_info["action"],
                                      lambda db: review_list.get(db, sid), data)
    except Refused as exc:
        raise (web.HTTPNotFound() if exc.status == 404 else web.HTTPForbidden()) from exc
    except ActionError as exc:
        message = f"未完成：{exc}"
    await auth.flash(request, message)
    raise web.HTTPFound(f"/console/s/{sid}")


def setup(app: web.Application) -> None:
    app.router.add_post("/console/s/{id}/{action}", act)
