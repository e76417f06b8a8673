"""Validation of the public form, with messages a citizen can act on.

Each message says what to fix, in plain Chinese, next to the field it is about. Input is never
thrown away: the form is shown again with everything the citizen typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

BODY_MIN, BODY_MAX = 5, 10_000
NAME_MAX, SUBJECT_MAX = 50, 100
_PHONE_CHARS = re.compile(r"^[0-9+\-\s()（）－]{5,25}$")
# Control characters other than tab and newlines have no place in a letter.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

FIELDS = ("name", "email", "phone", "subject", "body", "report", "public")
# The writer's answer to "is this a 举报?": not one (""), 实名 ("real") or 匿名 ("anonymous").
# Either 举报 answer restricts the letter (handlers/classify/restrict.py); its values are the
# ones handlers/parse.py reads from the payload.
REPORT_CHOICES = ("", "real", "anonymous")


@dataclass
class FormInput:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _clean(value: str) -> str:
    return _CONTROL.sub("", unicodedata.normalize("NFC", value)).strip()


# A local part that email-validator certainly accepts (a dot-atom of common characters), and
# the most an address may have in all (RFC 5321 path limit, email-validator's own). With an
# ASCII domain the address is its own ASCII form, so these lengths are the ones it checks.
_PLAIN_LOCAL = re.compile(r"[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*")
_LOCAL_MAX, _ADDRESS_MAX = 64, 254
_BAD_EMAIL = "邮箱地址格式不正确，请检查，例如：zhang@example.com"


@lru_cache(maxsize=4096)
def _domain_ok(domain: str) -> bool:
    """Whether email-validator accepts addresses at ``domain``. Its domain check (IDNA, the
    special-use names) is two thirds of a validation, and citizens' addresses share a few
    domains (qq.com, 163.com, ...), so it is asked once per domain."""
    try:
        validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _check_email(value: str) -> str | None:
    if not value:
        return None
    local, _, domain = value.rpartition("@")
    if (len(value) <= _ADDRESS_MAX and len(local) <= _LOCAL_MAX and domain.isascii()
            and _PLAIN_LOCAL.fullmatch(local) and _domain_ok(domain)):
        return None  # a plain address at a good domain: what the full check would say
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return _BAD_EMAIL
    return None


def _check_phone(value: str) -> str | None:
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if not _PHONE_CHARS.match(value) or not 7 <= len(digits) <= 15:
        return "电话号码请只填写数字（7–15 位），可带区号，例如：0513-12345678 或 13800000000"
    return None


def clean_text(value: str) -> str:
    """A letter's text as we keep it: NFC, no control characters, trimmed."""
    return _clean(value)


def body_error(text: str) -> str | None:
    """What is wrong with a letter's text (also a follow-up's), or None."""
    n = len(text)
    if n == 0:
        return "请填写反映的内容。"
    if n < BODY_MIN:
        return f"内容太短了，请至少写 {BODY_MIN} 个字，说明发生了什么。"
    if n > BODY_MAX:
        return f"内容超过了 {BODY_MAX} 字（现在 {n} 字），请精简，或分几次提交。"
    return None


def validate(raw: dict[str, str]) -> FormInput:
    values = {k: _clean(raw.get(k, "")) for k in FIELDS}
    values["email"] = values["email"].replace(" ", "").lower()
    form = FormInput(values)
    body_message = body_error(values["body"])
    if body_message:
        form.errors["body"] = body_message
    if len(values["name"]) > NAME_MAX:
        form.errors["name"] = f"姓名请不要超过 {NAME_MAX} 个字。"
    if len(values["subject"]) > SUBJECT_MAX:
        form.errors["subject"] = f"标题请不要超过 {SUBJECT_MAX} 个字。"
    for key, check in (("email", _check_email), ("phone", _check_phone)):
        message = check(values[key])
        if message:
            form.errors[key] = message
    _check_report(form)
    # 同意公开 (a checkbox): ticked or not; anything else a browser cannot send means not.
    values["public"] = "yes" if values["public"] == "yes" else ""
    return form


def _check_report(form: FormInput) -> None:
    """实名举报 needs the name it promises; 匿名举报 keeps none, even if one was typed."""
    values = form.values
    if values["report"] not in REPORT_CHOICES:
        values["report"] = ""
        form.errors["report"] = "请选择这封信是不是举报。"
    elif values["report"] == "real" and not values["name"]:
        form.errors["name"] = "实名举报请填写您的真实姓名；不想留名，可以选择“匿名举报”。"
    elif values["report"] == "anonymous":
        values["name"] = ""
