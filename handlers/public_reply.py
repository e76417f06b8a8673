"""Public replies (公开答复), opt-in, as 人民网领导留言板 and municipal 领导信箱 publish them:
which cases may go on the public page, and the masked draft a supervisor checks first.

A case may be published when its citizen ticked 同意公开 on the form (``flags["public"]``,
from the raw payload), it has been answered (已办结, or answered at 复查 / 复核), and it is not
a 举报 — never a restricted letter, whatever the consent (SECURITY.md). The draft is the
letter and the answer masked by the digest's own masker (handlers/digest/mask.py: names,
phones, ID numbers, e-mail and chat accounts, the door of an address); a person reads, edits
and approves it before it goes up (bot/web/console/actions.py, audited).
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.digest.mask import mask, mask_digits
from storage.models import Submission

ANSWERED = ("resolved", "reviewed", "rechecked")
CONSENT_FLAG = "public"
TEXT_MAX = 5_000


@dataclass(frozen=True)
class Draft:
    question: str
    answer: str


def consented(sub: Submission) -> bool:
    return bool((sub.flags or {}).get(CONSENT_FLAG))


def refusal(sub: Submission) -> str | None:
    """Why ``sub`` may not be published (Chinese, for staff), or None when it may."""
    if sub.restricted:
        return "此件是举报，举报件一律不公开（内容和举报人信息只限主管、管理员查看）。"
    if not consented(sub):
        return "来信人没有勾选“同意公开”，此件不能公开。"
    if sub.status not in ANSWERED:
        return "此件还没有办结答复，办结以后才能公开。"
    return None


def draft(sub: Submission, answer: str) -> Draft:
    """The masked question and answer, for a person to check. The writer's own name is masked
    wherever it appears, besides every name the masker finds."""
    names = [sub.from_name]
    question = "\n".join(p for p in (sub.subject.strip(), (sub.new_text or sub.text).strip()) if p)
    return Draft(mask(question, names)[:TEXT_MAX], mask(answer, names)[:TEXT_MAX])


def unmasked(value: str) -> bool:
    """Whether approved text still holds a phone, ID, e-mail or account number, or the door of
    an address (the masker's deterministic rules): an edit must not put one back on the page.
    Names are the checking person's call: the name rules guess, and re-masking would publish
    text other than what was approved."""
    return mask_digits(value) != value
