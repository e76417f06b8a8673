"""举报 stay confidential on every output a reviewer or a digest recipient can read.

One 举报 goes through the real deployment: `feedback-bot serve` as a process (the commission's
mailbox ntzfwjgdw@163.com as sender, a Maildir for intake, a real SMTP sink), a citizen writing
from qq.com with a file attached and a follow-up reply. Its writer's name, phone, ID number,
WeChat ID and home address and the official it accuses are in it; a supervisor marks it 举报,
writes a note and a reply, and forwards it with a reason and a unit that name them again. Then
every output is walked:

- as a reviewer: every console and API route the application registers (enumerated from its
  router, not listed by hand), searches for each distinctive string, the counts, CSV and XLSX
  exports, the API list and record, the digest pages;
- as a digest recipient: the digest mail the SMTP sink received (every part decoded, the XLSX
  unzipped), and every file `feedback-bot digest --week W --out DIR` writes;
- the service's own log output, and what the commands print.

None of the distinctive strings may appear anywhere. The supervisor sees them (the walk is not
vacuous), and the digest counts the 举报.
"""

from __future__ import annotations

import asyncio
import email
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from openpyxl import load_workbook

from bot.config import load_settings
from bot.runtime import Runtime
from bot.web.app import make_app
from handlers.digest import week_of
from testing.loopback import free_port
from testing.smtp import Received, SmtpSink
from tests.bot.helpers import form_token, submit, tracking_no

BIN = Path(sys.executable).parent / "feedback-bot"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
MAILBOX = "ntzfwjgdw@163.com"
CITIZEN = "oyxl.jb2024@qq.com"
LEADER = "leader@zfw.example.gov.cn"

# The 举报, as its writer typed it: name, phone with dashes, ID number in groups, WeChat ID,
# home address, and the accused.
REPORT_SUBJECT = "实名举报海门区司法局副局长范振东"
REPORT_BODY = (
    "尊敬的领导：我叫欧阳秀兰，手机159-6743-8821，身份证号3206 8219 9208 1654 27，"
    "微信号 oyxl_jubao88，家住金桥花园7栋2单元1101室（迎春路188号）。"
    "海门区司法局副局长范振东在办理我父亲的法律援助时索要红包二十万元，"
    "不给钱就拖着不办。我手里有转账记录，见附件。请对我的身份保密，我怕被打击报复。")
ATTACHMENT = "欧阳秀兰转账记录.png"
FOLLOWUP = "补充证据：范振东的司机冷海涛收过两次现金"
NOTE = "已与欧阳秀兰电话核实，她担心范振东报复，暂不约谈"
REPLY = "欧阳女士：您反映的范振东问题已转纪委处理"
REASON = "转纪委：举报人欧阳秀兰(159-6743-8821)反映副局长范振东受贿"
UNIT = "区纪委监委第三纪检监察室（范振东案）"

# Nothing of these may reach a reviewer or a digest recipient.
SECRETS = (
    "欧阳秀兰", "秀兰", "159-6743-8821", "15967438821", "6743", "3206 8219 9208 1654 27",
    "320682199208165427", "oyxl_jubao88", "oyxl.jb2024", "金桥花园", "1101室", "迎春路188号",
    "范振东", "冷海涛", "红包二十万", "请对我的身份保密", "转账记录", "第三纪检监察室",
    "暂不约谈", "已转纪委处理", "司机",
)

# An ordinary letter of the same week, which the digest may quote once masked.
OTHER_BODY = ("我是王建军，电话13705126688。滨江路的路灯坏了三个月，夜里骑车很危险，"
              "请城管部门尽快修复。")


def run_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True,
                         timeout=180, input=stdin, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def write_config(tmp_path: Path, db_url: str, port: int, smtp_port: int) -> Path:
    path = tmp_path / "feedback-bot.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[web]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"
secret_key = "confidentiality-test-key"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
from_addr = "{MAILBOX}"
retry_base_seconds = 0.2
[maildir]
path = "{tmp_path}/maildir"
[digest]
recipients = ["分管领导 <{LEADER}>"]
[intake]
attachments_dir = "{tmp_path}/var/attachments"
prepare_processes = 0
retry_base_seconds = 0.2
[classifier]
model_dir = "{tmp_path}/var/models"
[casework]
units = ["法院", "{UNIT}"]
[log]
level = "INFO"
format = "json"
""", encoding="utf-8")
    return path


def png() -> bytes:
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def report_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = f"欧阳秀兰 <{CITIZEN}>"
    msg["To"] = MAILBOX
    msg["Subject"] = REPORT_SUBJECT
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="qq.com")
    msg.set_content(REPORT_BODY)
    msg.add_attachment(png(), maintype="image", subtype="png", filename=ATTACHMENT)
    return bytes(msg)


def followup_mail(tracking_no: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"欧阳秀兰 <{CITIZEN}>"
    msg["To"] = MAILBOX
    msg["Subject"] = f"补充材料（编号 {tracking_no}）"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="qq.com")
    msg.set_content(FOLLOWUP)
    return bytes(msg)


def drop(maildir: Path, name: str, raw: bytes) -> None:
    (maildir / "tmp").mkdir(parents=True, exist_ok=True)
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    os.utime(tmp, (0, 0))  # written long ago: complete
    tmp.rename(maildir / "new" / name)


async def until(check, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """Poll ``check`` (async, returns a truthy value when done) until it succeeds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def mail_to(sink: SmtpSink, rcpt: str, n: int = 1) -> list[Received]:
    async def found() -> list[Received]:
        got = [m for m in sink.messages if rcpt in m.rcpt_tos]
        return got if len(got) >= n else []
    return await until(found, f"mail to {rcpt}")


async def login(http: aiohttp.ClientSession, base: str, name: str) -> None:
    async with http.get(f"{base}/console/login") as resp:
        token = CSRF.search(await resp.text()).group(1)  # type: ignore[union-attr]
    async with http.post(f"{base}/console/login", allow_redirects=False,
                         data={"csrf": token, "name": name, "password": PASSWORD}) as resp:
        assert resp.status == 302


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        return CSRF.search(await resp.text()).group(1)  # type: ignore[union-attr]


def texts_of_mail(raw: bytes) -> list[str]:
    """Every header and every part of a mail, decoded; attachments unzipped when they are ZIPs
    (XLSX), so what a recipient's mail program or spreadsheet shows is what is checked."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    out = [f"{k}: {v}" for k, v in msg.items()]
    for part in msg.walk():
        if part.is_multipart():
            continue
        out += [f"{k}: {v}" for k, v in part.items()]
        out.append(str(part.get_filename() or ""))
        content = part.get_content()
        out += texts_of_bytes(content) if isinstance(content, bytes) else [content]
    return out


def texts_of_bytes(data: bytes) -> list[str]:
    if data.startswith(b"PK"):
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                out.append(name)
                out.append(z.read(name).decode("utf-8", "replace"))
        wb = load_workbook(io.BytesIO(data), read_only=True)
        out += [str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                for c in row if c is not None]
        out += [ws.title for ws in wb.worksheets]
        return out
    return [data.decode("utf-8", "replace")]


def leaks(texts: list[str] | str, where: str) -> list[str]:
    blob = texts if isinstance(texts, str) else "\n".join(texts)
    return [f"{where}: {s}" for s in SECRETS if s in blob]


async def routes_of(config: Path) -> list[tuple[str, str]]:
    """Every console and API route the service registers, from the application's own router."""
    rt = Runtime.create(load_settings(config), with_classifier=False)
    try:
        app: web.Application = make_app(rt)
        out = []
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter") or ""
            if route.method != "HEAD" and path.startswith(("/console", "/api/v1/")):
                out.append((route.method, path))
        return out
    finally:
        await rt.close()


async def test_a_report_reaches_no_reviewer_and_no_digest_recipient(
        db_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> None:
    port = free_port()
    config = write_config(tmp_path, db_url, port, smtp_sink.port)
    base = f"http://127.0.0.1:{port}"
    for name, role in (("reviewer1", "reviewer"), ("supervisor1", "supervisor")):
        run_cli("user", "add", name, "--role", role, "--password-stdin", "--config",
                str(config), cwd=tmp_path, stdin=PASSWORD + "\n")
    tokens = {name: run_cli("user", "token", name, "--config", str(config),
                            cwd=tmp_path).stdout.split()[-1]
              for name in ("reviewer1", "supervisor1")}
    log_path = tmp_path / "serve.log"
    printed: list[str] = []
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([str(BIN), "serve", "--config", str(config)], cwd=tmp_path,
                                stdout=log_file, stderr=subprocess.STDOUT)
    try:
        await until(lambda: _healthy(base, proc), "serve to start")
        leaked = await _walk(tmp_path, config, base, smtp_sink, tokens, printed)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert log.strip(), "serve logged nothing"
    leaked += leaks(log, "serve log") + leaks(printed, "command output")
    assert leaked == []


async def _healthy(base: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "serve exited early"
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _walk(tmp_path: Path, config: Path, base: str, sink: SmtpSink,
                tokens: dict[str, str], printed: list[str]) -> list[str]:
    maildir = tmp_path / "maildir"
    sup_head = {"Authorization": f"Bearer {tokens['supervisor1']}"}
    # -- the 举报 arrives by mail; its writer sends more, quoting its number -------------------
    drop(maildir, "1700000001.M1P1.host", report_mail())

    async def filed() -> dict:
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/api/v1/submissions?view=all&q=司法局副局长", headers=sup_head) as resp:
            items = (await resp.json())["items"]
        return items[0] if items else {}
    sub = await until(filed, "the 举报 filed")
    sid, tn = sub["id"], sub["tracking_no"]
    drop(maildir, "1700000002.M1P1.host", followup_mail(tn))
    async with aiohttp.ClientSession() as http:  # an ordinary letter of the same week
        status, html = await submit(http, base, await form_token(http, base), name="王建军",
                                    email="wjj.citizen@163.com", phone="", subject="路灯",
                                    body=OTHER_BODY)
        assert status == 200
        other_tn = tracking_no(html)

    # -- a supervisor marks it 举报 and works on it ------------------------------------------
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as sup:
        await login(sup, base, "supervisor1")
        url = f"{base}/console/s/{sid}"

        async def followup_filed() -> bool:
            async with sup.get(url) as resp:
                return FOLLOWUP in await resp.text()
        await until(followup_filed, "the follow-up filed")
        for action, data in (
            ("classify", {"category": sub["category"] if sub["category"] not in (
                "unclassified", "spam") else "1", "measure": "", "kind": "report"}),
            ("note", {"text": NOTE}),
            ("reply", {"body": REPLY}),
            ("status", {"current": "new", "to": "forwarded", "reason": REASON, "unit": UNIT,
                        "due": str(date.today() + timedelta(days=7))}),
        ):
            data["csrf"] = await csrf_of(sup, url)
            async with sup.post(f"{url}/{action}", data=data, allow_redirects=False) as resp:
                assert resp.status == 302, action
        async with sup.get(url) as resp:
            page = await resp.text()
        # The supervisor does read it all: the strings the walk looks for are really there.
        for s in (REPORT_SUBJECT, "159-6743-8821", "oyxl_jubao88", FOLLOWUP, NOTE, REPLY,
                  REASON, UNIT, ATTACHMENT):
            assert s in page, s
        att = re.search(rf"/console/s/{sid}/files/(\d+)", page).group(1)  # type: ignore[union-attr]
    async def replied() -> bool:  # the reply went to its writer, and only to her
        return any(str(m.message["Subject"]).startswith("【答复】") for m in sink.messages
                   if CITIZEN in m.rcpt_tos)
    await until(replied, "the reply sent")

    # -- the digest of this week: sent through the service, and written out -----------------
    week = str(week_of(datetime.now(UTC), ZoneInfo("Asia/Shanghai")))
    printed.append(run_cli("digest", "--config", str(config), "--week", week, "--send",
                           cwd=tmp_path).stdout)
    out_dir = tmp_path / "digest-out"
    done = run_cli("digest", "--config", str(config), "--week", week, "--out", str(out_dir),
                   cwd=tmp_path)
    printed += [done.stdout, done.stderr]
    this_week = week_of(datetime.now(UTC), ZoneInfo("Asia/Shanghai"))
    title = f"{this_week.year}年第{this_week.number}周"

    async def digest_sent() -> list[Received]:
        return [m for m in sink.messages if LEADER in m.rcpt_tos and title in str(
            m.message["Subject"])]
    [digest_mail] = await until(digest_sent, "the digest mail")
    leaked: list[str] = []
    mail_texts = texts_of_mail(digest_mail.content)
    assert any("其中举报 1 件" in t for t in mail_texts)  # counted, not quoted
    assert any("137****6688" in t for t in mail_texts)  # the other letter, quoted masked
    leaked += leaks(mail_texts, "digest mail")
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"digest.html", "digest.txt", "week.xlsx", "digest.eml"}
    for path in files:
        data = path.read_bytes()
        texts = texts_of_mail(data) if path.suffix == ".eml" else texts_of_bytes(data)
        leaked += leaks(texts, f"digest --out {path.name}")
        leaked += [f"digest --out {path.name} (raw bytes): {s}" for s in SECRETS
                   if s.encode() in data]

    # -- a reviewer walks every route --------------------------------------------------------
    routes = await routes_of(config)
    assert {("GET", "/console"), ("GET", "/console/s/{id}"), ("GET", "/console/digests/{week}"),
            ("GET", "/api/v1/submissions/{key}"), ("POST", "/console/s/{id}/{action}")} <= set(
        routes)
    values = {"id": str(sid), "att": att, "week": week, "key": tn,
              "action": "note", "name": "supervisor1", "user": "supervisor1"}
    rev_head = {"Authorization": f"Bearer {tokens['reviewer1']}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as rev:
        await login(rev, base, "reviewer1")
        seen = 0
        statuses: list = []
        gets = [re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values.get(m.group(1), "1"), p)
                for m, p in routes if m == "GET"]
        gets += [f"/api/v1/submissions/{sid}", f"/console/s/{sid}/raw",
                 f"/console/s/{sid}/files/{att}/preview", "/console?view=all",
                 "/console?kind=report", f"/console?q={tn}", "/console/export.csv?view=all",
                 "/console/export.xlsx?view=all", "/console?status=forwarded"]
        for path in gets:
            if path.endswith("/logout"):
                continue
            headers = rev_head if path.startswith("/api/") else {}
            async with rev.get(base + path, headers=headers) as resp:
                body = await resp.read()
                assert resp.status < 500, (path, resp.status)
                seen += resp.status == 200
                statuses.append((path, resp.status))
                texts = [str(resp.url), *(f"{k}: {v}" for k, v in resp.headers.items())]
                texts += texts_of_bytes(body)
            leaked += leaks(texts, f"reviewer GET {path}")
        # Searching for what only the 举报 says finds nothing (the page repeats the words
        # searched for, in its URL and search box: those are the reviewer's own).
        for secret in SECRETS:
            for path, found in ((f"/console?q={secret}", lambda b: tn in b),
                                (f"/console/export.csv?q={secret}", lambda b: tn in b),
                                (f"/api/v1/submissions?q={secret}", lambda b: tn in b)):
                headers = rev_head if path.startswith("/api/") else {}
                async with rev.get(base + path, headers=headers) as resp:
                    body = (await resp.read()).decode("utf-8", "replace")
                    assert resp.status == 200, path
                assert not found(body), f"reviewer search {path} found the 举报"
                leaked += leaks(body.replace(secret, ""), f"reviewer GET {path}")
        assert seen >= 15 and len(statuses) >= 20, statuses
        # Every form a reviewer can post (except signing out): refused on the 举报, or a
        # harmless answer; none echoes its content.
        posts = [re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: values.get(m.group(1), "1"), p)
                 for m, p in routes if m == "POST" and not p.endswith("/logout")]
        posts += [f"/console/s/{sid}/{a}" for a in ("classify", "status", "assign", "spam",
                                                    "reply")]
        for path in posts:
            data = {"csrf": await csrf_of(rev, f"{base}/console"), "text": "x", "body": "x"}
            async with rev.post(base + path, data=data) as resp:
                body = await resp.read()
                assert resp.status < 500, (path, resp.status)
                texts = [str(resp.url), *texts_of_bytes(body)]
            leaked += leaks(texts, f"reviewer POST {path}")
        # The reviewer does see that the 举报 exists, and the other letter in full.
        async with rev.get(f"{base}/console?view=all") as resp:
            listing = await resp.text()
        assert tn in listing and other_tn in listing and "举报" in listing
    return leaked
