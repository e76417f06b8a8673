"""Hostile and random input against the public pages, the console and the API: never a 5xx.

Hypothesis drives a real running service (on SQLite and on PostgreSQL, which refuses an
out-of-range bigint where SQLite may not) with random field values, binary junk, control
characters, CRLF, SQL and script payloads, broken multipart bodies, and random console and API
query parameters and path ids. Only the answers a user can be given are allowed: 200, 302/303,
400, 403, 404, 405, 413 and 429.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import start
from storage import users
from testing.postgres import Postgres
from tests.bot.console.support import add_user, file_letter, login
from tests.bot.helpers import form_token
from tests.conftest import make_settings

ALLOWED = {200, 302, 303, 400, 403, 404, 405, 413, 429}
HOSTILE = [
    "'; DROP TABLE submissions; --",
    "<script>alert(1)</script>",
    "\r\nBcc: victim@example.com\r\n",
    "\x00\x01\x02\x7f",
    "😀" * 50,
    "a" * 20_000,
    "%00%0d%0a",
    "{{ 7*7 }}{% raw %}",
    "\ud800",
]
FIELD = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300), st.binary(max_size=200))
FIELDS = st.dictionaries(
    st.sampled_from(["name", "email", "phone", "subject", "body", "token", "website", "x"]),
    FIELD, max_size=7)


@pytest.fixture(scope="module")
def fuzz_loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, fuzz_loop, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/fuzz.db"
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        url = postgres.create_database(f"fuzz_{uuid.uuid4().hex[:12]}",
                                       template=request.getfixturevalue("pg_template"))
    # Hundreds of posts from one address: lift the per-address limits (tested in tests/bot/citizen).
    limits = {"submits_per_hour": 1_000_000, "lookups_per_hour": 1_000_000}
    service = fuzz_loop.run_until_complete(start(make_settings(url, Path(tmp), web=limits)))
    session = fuzz_loop.run_until_complete(_session())
    token = fuzz_loop.run_until_complete(form_token(session, service.base_url))
    yield fuzz_loop, service, session, token
    fuzz_loop.run_until_complete(session.close())
    fuzz_loop.run_until_complete(service.stop())


@pytest.fixture(scope="module")
def staff(live):  # type: ignore[no-untyped-def]
    """A signed-in admin (console session cookie) and an API token, with one letter filed."""
    loop, service, _session_, _token = live

    async def setup() -> tuple[aiohttp.ClientSession, str]:
        await add_user(service, "fuzzadmin", "admin")
        async with service.runtime.sessions.begin() as db:
            api_token = await users.issue_token(db, "fuzzadmin")
        await file_letter(service, "派出所办户口一直拖着不给办，跑了五趟。", email="a@example.com")
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        resp = await login(http, service.base_url, "fuzzadmin")
        assert resp.status == 302
        return http, api_token

    http, api_token = loop.run_until_complete(setup())
    yield http, api_token
    loop.run_until_complete(http.close())


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


async def _post_form(session, url: str, fields: dict, token: str, keep_token: bool) -> int:  # type: ignore[no-untyped-def]
    if keep_token:
        fields = {**fields, "token": token}
    body = b"&".join(
        _encode(k) + b"=" + _encode(v).replace(b"&", b"%26").replace(b"=", b"%3D")
        for k, v in fields.items()
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=FIELDS, keep_token=st.booleans(),
       path=st.sampled_from(["/feedback", "/", "/status", "/status/review"]))
def test_random_form_posts_never_fail(live, fields, keep_token, path):  # type: ignore[no-untyped-def]
    loop, service, session, token = live
    status = loop.run_until_complete(
        _post_form(session, service.base_url + path, fields, token, keep_token))
    assert status in ALLOWED


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=2000),
       ctype=st.sampled_from(["multipart/form-data; boundary=xyz", "multipart/form-data",
                              "application/x-www-form-urlencoded; charset=gbk",
                              "text/plain", "application/json", "multipart/form-data; boundary="]))
def test_broken_bodies_never_fail(live, body, ctype):  # type: ignore[no-untyped-def]
    loop, service, session, _token = live

    async def post() -> int:
        async with session.post(service.base_url + "/feedback", data=body,
                                headers={"Content-Type": ctype}) as resp:
            await resp.read()
            return resp.status

    assert loop.run_until_complete(post()) in ALLOWED


def test_hostile_text_is_stored_verbatim_and_shown_escaped(live):  # type: ignore[no-untyped-def]
    loop, service, session, token = live
    payload = "<script>alert(1)</script>'; DROP TABLE submissions; --"

    async def go() -> str:
        fresh = await form_token(session, service.base_url)
        async with session.post(service.base_url + "/feedback",
                                data={"token": fresh, "body": payload, "subject": payload}) as r:
            assert r.status == 200
            return await r.text()

    html = loop.run_until_complete(go())
    assert "<script>alert(1)</script>" not in html


# -- the shapes that once crashed: non-ASCII digits, numbers too big for a database integer,
#    dates at the end of the calendar, NUL in a multipart header --------------------------------

BAD_TOKEN = "a.\u00b2.b"  # "a.².b": str.isdigit() accepts "²", int() does not
BAD_NUMBERS = ["\u00b2", "\u0661\u0662", "\uff11\uff12", "99999999999999999999999",
               "9223372036854775808", "-1", "1e3", " 1", ""]
BAD_DAYS = ["9999-12-31", "0001-01-01", "2026-02-30", "\uff12\uff10\uff12\uff16-01-01", "x"]


async def _get(http: aiohttp.ClientSession, url: str, **kw) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with http.get(url, allow_redirects=False, **kw) as resp:
        return resp.status, await resp.text(errors="replace")


async def _post(http: aiohttp.ClientSession, url: str, **kw) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with http.post(url, allow_redirects=False, **kw) as resp:
        return resp.status, await resp.text(errors="replace")


def test_public_posts_with_a_non_ascii_digit_token_get_400(live):  # type: ignore[no-untyped-def]
    loop, service, session, _token = live
    base = service.base_url

    async def go() -> None:
        for path, data in (("/feedback", {"body": "路灯坏了一个月没人修。"}),
                           ("/status", {"tracking_no": "FK-AAAA-AAAA", "query_code": "123456"}),
                           ("/status/followup", {"text": "补充一下情况。"}),
                           ("/status/rating", {"satisfaction": "satisfied"})):
            status, page = await _post(session, base + path, data={"token": BAD_TOKEN, **data})
            assert status == 400, (path, status)
            assert "过期" in page or "无法识别" in page, path  # says what to do, in Chinese

    loop.run_until_complete(go())


def test_status_cookie_with_a_non_ascii_digit_shows_the_lookup_form(live):  # type: ignore[no-untyped-def]
    loop, service, _session_, _token = live

    async def go() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for value in (f"FK-AAAA-AAAA.{BAD_TOKEN[2]}.abc", "FK-AAAA-AAAA.9" + "9" * 100 + ".x"):
                status, page = await _get(http, service.base_url + "/status",
                                          headers={"Cookie": f"fb_status={value}"})
                # an unusable cookie is an expired one: ask for the number again
                assert status == 200 and "查询码" in page, value

    loop.run_until_complete(go())


def test_multipart_header_with_nul_gets_400(live):  # type: ignore[no-untyped-def]
    loop, service, session, token = live
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"body\x00\"\r\n\r\n"
            b"\xe8\xb7\xaf\xe7\x81\xaf\xe5\x9d\x8f\xe4\xba\x86\xe4\xb8\x80\xe4\xb8\xaa\xe6\x9c\x88\r\n"
            b"--xyz\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n" + token.encode()
            + b"\r\n--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\x00.png\"\r\n"
            b"Content-Type: image/png\x00\r\n\r\nxx\r\n--xyz--\r\n")

    async def go() -> int:
        status, _page = await _post(
            session, service.base_url + "/feedback", data=body,
            headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        return status

    assert loop.run_until_complete(go()) == 400


def test_console_and_api_answer_bad_numbers_and_dates_with_400_or_404(live, staff):  # type: ignore[no-untyped-def]
    loop, service, _session_, _token = live
    http, api_token = staff
    base = service.base_url
    bearer = {"Authorization": f"Bearer {api_token}"}

    async def go() -> None:
        for n in BAD_NUMBERS:
            if n and n.strip() == n and "/" not in n:
                for path in (f"/console/s/{n}", f"/console/s/{n}/raw",
                             f"/console/s/{n}/files/{n}", f"/console/s/1/files/{n}"):
                    assert (await _get(http, base + path))[0] == 404, path
                status, _ = await _get(http, f"{base}/api/v1/submissions/{n}", headers=bearer)
                assert status == 404, n
            for path in ("/console", "/console/export.csv", "/console/audit"):
                for key in ("after", "assignee", "before"):
                    status, page = await _get(http, base + path, params={key: n})
                    assert status in (200, 400), (path, key, n, status)
                    if status == 400:
                        assert "请" in page, (path, key, n)  # says what to fix
            for key in ("limit", "after", "assignee"):
                status, text = await _get(http, f"{base}/api/v1/submissions",
                                          params={key: n}, headers=bearer)
                assert status in (200, 400), (key, n, status)
                if status == 400:
                    assert "error" in text
        for n in ("\u00b2", "99999999999999999999999"):
            for key in ("after", "assignee"):
                assert (await _get(http, f"{base}/console", params={key: n}))[0] == 400
            assert (await _get(http, f"{base}/api/v1/submissions", params={"limit": n},
                               headers=bearer))[0] == 400
        assert (await _get(http, f"{base}/console", params={"after": "\u00b2-1"}))[0] == 400
        for day in BAD_DAYS:
            for path in ("/console", "/console/export.csv", "/console/export.xlsx",
                         "/console/audit", "/api/v1/submissions"):
                for key in ("from", "to"):
                    status, _ = await _get(http, base + path, params={key: day},
                                           headers=bearer if path.startswith("/api") else None)
                    assert status == 400, (path, key, day, status)
        # A NUL in any text parameter (PostgreSQL refuses it in a bound string): a 400 that
        # says what to fix, on pages and in the API alike.
        for path in ("/console", "/console/audit", "/api/v1/submissions"):
            for key in ("q", "actor", "action"):
                status, text = await _get(http, base + path, params={key: "a\x00b"},
                                          headers=bearer if path.startswith("/api") else None)
                said = json.loads(text)["error"] if path.startswith("/api") else text
                assert status == 400 and "空字符" in said, (path, key, status)
        # a good value still works
        assert (await _get(http, f"{base}/console", params={"from": "2026-01-01"}))[0] == 200
        status, text = await _get(http, f"{base}/api/v1/submissions", params={"limit": "1"},
                                  headers=bearer)
        assert status == 200 and '"items"' in text

    loop.run_until_complete(go())


def test_console_posts_to_bad_ids_get_404(live, staff):  # type: ignore[no-untyped-def]
    loop, service, _session_, _token = live
    http, _api_token = staff
    base = service.base_url

    async def go() -> None:
        status, page = await _get(http, f"{base}/console/users")
        assert status == 200
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        for n in ("\u00b2", "99999999999999999999999"):
            for path in (f"/console/s/{n}/note", f"/console/users/{n}/disable",
                         f"/console/outbox/{n}/resend", f"/console/intake/{n}/retry"):
                status, _ = await _post(http, base + path, data={"csrf": csrf, "text": "x"})
                assert status == 404, (path, status)
            status, _ = await _post(http, f"{base}/console/s/1/assign",
                                    data={"csrf": csrf, "assignee": n})
            assert status == 302, (n, status)  # back to the letter, "没有这位工作人员"

    loop.run_until_complete(go())


QUERY_KEYS = ["after", "assignee", "before", "from", "to", "limit", "status", "kind", "channel",
              "category", "measure", "q", "view", "review", "overdue", "actor", "action"]
QUERY_VALUE = st.one_of(st.sampled_from(HOSTILE + BAD_NUMBERS + BAD_DAYS),
                        st.text(max_size=40),
                        st.from_regex(r"\A[0-9\u00b2\u0660-\u0669-]{0,30}\Z"))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(params=st.dictionaries(st.sampled_from(QUERY_KEYS), QUERY_VALUE, max_size=4),
       path=st.sampled_from(["/console", "/console/export.csv", "/console/audit",
                             "/api/v1/submissions", "/console/s/{}", "/api/v1/submissions/{}",
                             "/console/s/1/files/{}", "/console/digests/{}"]),
       key=st.one_of(st.text(min_size=1, max_size=30), st.from_regex(r"\A[0-9]{1,40}\Z")))
def test_random_console_and_api_queries_never_fail(live, staff, params, path, key):  # type: ignore[no-untyped-def]
    loop, service, _session_, _token = live
    http, api_token = staff
    path = path.format(key.replace("/", "").replace("?", "").replace("#", "") or "1")
    clean = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
             for k, v in params.items()}
    headers = {"Authorization": f"Bearer {api_token}"} if path.startswith("/api") else None

    async def go() -> int:
        from yarl import URL

        url = URL(service.base_url).with_path(path, encoded=False).with_query(clean)
        return (await _get(http, str(url), headers=headers))[0]

    assert loop.run_until_complete(go()) in ALLOWED


ACTION_VALUE = st.one_of(st.sampled_from(HOSTILE + BAD_NUMBERS + BAD_DAYS), st.text(max_size=40),
                         st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
ACTION_BODY = st.one_of(
    st.fixed_dictionaries({"action": st.sampled_from(
        ["accept", "reject", "extend", "forward", "resolve", "request_review", "start", "x",
         "unit_result", "merge", ""])},
        optional={k: ACTION_VALUE for k in ("reason", "unit", "due", "reply", "days", "result",
                                            "into")}),
    st.dictionaries(st.sampled_from(["action", "reason", "unit", "due", "reply", "days",
                                     "result", "into"]), ACTION_VALUE, max_size=8),
    ACTION_VALUE)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=ACTION_BODY, raw=st.one_of(st.none(), st.binary(max_size=200)),
       key=st.one_of(st.just("1"), st.text(min_size=1, max_size=30),
                     st.from_regex(r"\A[0-9]{1,40}\Z")))
def test_random_api_actions_never_fail(live, staff, body, raw, key):  # type: ignore[no-untyped-def]
    """The write API (issue #18) answers any body with 200, or 400/403/404 and a Chinese
    message; the console's action form the same (a redirect back, with the message)."""
    loop, service, _session_, _token = live
    http, api_token = staff
    key = "".join(c for c in key if c.isprintable() and c not in "/?#%") or "1"

    async def go() -> tuple[int, str, int]:
        from yarl import URL

        url = URL(service.base_url).with_path(f"/api/v1/submissions/{key}/actions",
                                              encoded=False)
        data = raw if raw is not None else json.dumps(body).encode()
        status, text = await _post(http, str(url), data=data, headers={
            "Authorization": f"Bearer {api_token}", "Content-Type": "application/json"})
        page_status, page = await _get(http, f"{service.base_url}/console/s/1")
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        fields = body if isinstance(body, dict) else {"action": str(body)}
        form = b"&".join(_encode(str(k)) + b"=" + _encode(str(v)).replace(b"&", b"%26")
                         for k, v in {**fields, "csrf": csrf}.items())
        console_status, _ = await _post(
            http, f"{service.base_url}/console/s/1/status", data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return status, text, console_status

    status, text, console_status = loop.run_until_complete(go())
    assert status in ALLOWED and console_status in ALLOWED
    if status in (400, 403):  # what the API itself refused says why (a 404 may be the router's)
        assert json.loads(text)["error"]


ENTRY_KEYS = ["channel", "name", "phone", "email", "subject", "body", "report", "received",
              "address", "nonce", "x"]
ENTRY_VALUE = st.one_of(st.sampled_from(HOSTILE + BAD_DAYS + ["2999-01-01T08:00", "phone",
                                                             "post", "2026-13-40T25:61"]),
                        st.text(max_size=60))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=st.dictionaries(st.sampled_from(ENTRY_KEYS), ENTRY_VALUE, max_size=8),
       files=st.lists(st.tuples(st.text(st.characters(blacklist_categories=("Cc", "Cs")),
                                        max_size=30), st.binary(max_size=300)), max_size=5),
       multipart=st.booleans(), csrf_first=st.booleans())
def test_random_staff_entries_never_fail(live, staff, fields, files, multipart, csrf_first):  # type: ignore[no-untyped-def]
    """Staff entry (issue #18: the time received, the postal address, scanned files) answers
    any form with the page again (400, saying what to fix), 413 or the done page; never a 5xx.
    A form with files is multipart, its CSRF token read first: out of order it is a 403."""
    loop, service, _session_, _token = live
    http, _api_token = staff
    base = service.base_url

    async def go() -> int:
        status, page = await _get(http, f"{base}/console/new")
        assert status == 200
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        values = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                  for k, v in fields.items()}
        if not multipart:
            return (await _post(http, f"{base}/console/new", data={**values, "csrf": csrf}))[0]
        form = aiohttp.FormData(default_to_multipart=True)
        if csrf_first:
            form.add_field("csrf", csrf)
        for key, value in values.items():
            form.add_field(key, value)
        for name, data in files:
            form.add_field("attachments", data, filename=name or "f",
                           content_type="application/octet-stream")
        if not csrf_first:
            form.add_field("csrf", csrf)
        return (await _post(http, f"{base}/console/new", data=form))[0]

    status = loop.run_until_complete(go())
    assert status in ALLOWED
    if multipart and not csrf_first and (fields or files):
        assert status == 403


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(other=st.one_of(QUERY_VALUE, st.integers()), key=st.sampled_from(["1", "\u00b2", "0"]))
def test_random_unlink_posts_never_fail(live, staff, other, key):  # type: ignore[no-untyped-def]
    """并单's unlink form (issue #20): any "other" is a redirect back with a message, a bad
    letter id a 404 (a body that is not UTF-8 a 400, whichever the id)."""
    loop, service, _session_, _token = live
    http, _api_token = staff

    async def go() -> int:
        base = service.base_url
        _status, page = await _get(http, f"{base}/console/s/1")
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = b"csrf=" + _encode(csrf) + b"&other=" + _encode(str(other)).replace(
            b"&", b"%26").replace(b"=", b"%3D")
        status, _ = await _post(http, f"{base}/console/s/{key}/unlink", data=form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        return status

    status = loop.run_until_complete(go())
    assert status in (400, 302 if key == "1" else 404), (other, key, status)
