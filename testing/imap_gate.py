"""A TCP proxy in front of the real Dovecot that behaves like imap.163.com about RFC 2971 ID.

imap.163.com (Coremail) answers ``NO SELECT Unsafe Login. Please contact kefu@188.com for help``
to SELECT or EXAMINE from a client that has not sent ``ID`` after logging in (imapclient #544,
OfflineIMAP #696, himalaya #651). 163's own servers cannot run here, so this proxy adds that one
behaviour to Dovecot and forwards everything else byte for byte, both ways. Like the other servers in ``testing/`` it
imports no pytest, runs its own event loop in a thread (the service under test may be another
process) and binds 127.0.0.1 on a free port.

The client's side is read as IMAP commands (RFC 9051 §2.2: a command is a tagged line, and a
line ending in a literal ``{n}`` / ``{n+}`` continues after n raw octets), so that text inside a
literal (an APPENDed mail saying "a1 SELECT") is never taken for a command.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Self

from testing.loopback import HOST, free_port

UNSAFE_LOGIN = b"NO SELECT Unsafe Login. Please contact kefu@188.com for help"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
LINE_LIMIT = 1 << 20  # a UID FETCH of a long UID set is one long line
_COMMAND = re.compile(rb"^(\S+) ([A-Za-z]+)(?: (.*))?\r\n$", re.DOTALL)


class IdGate:
    """Proxy ``upstream`` (host, port); refuse SELECT/EXAMINE until the client sent ID.

    ``refuse_id``: answer ID itself with ``NO`` (the command never reaches Dovecot), to check
    that a client goes on when ID fails; combine with ``gate=False`` so SELECT is then allowed.
    What it saw is kept for assertions: ``ids`` (the argument of every ID), ``refused`` (how
    many SELECT/EXAMINE it answered with 163's refusal) and ``commands`` (names, in order).
    """

    def __init__(self, upstream: tuple[str, int], *, gate: bool = True,
                 refuse_id: bool = False) -> None:
        self.upstream = upstream
        self.gate = gate
        self.refuse_id = refuse_id
        self.host = HOST
        self.port = free_port()
        self.ids: list[bytes] = []
        self.refused = 0
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- control (test thread) ------------------------------------------------------------------
    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._client, self.host, self.port, limit=LINE_LIMIT))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="imap-id-gate", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the IMAP ID gate did not start")
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    # -- proxying (gate thread) -----------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        # Replies from the gate and from Dovecot share the client's stream: one lock orders them.
        send = asyncio.Lock()
        down = asyncio.create_task(self._pump(up_reader, writer, send))
        try:
            await self._commands(reader, up_writer, writer, send)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            up_writer.close()
            await asyncio.gather(down, return_exceptions=True)
            writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    send: asyncio.Lock) -> None:
        try:
            while data := await src.read(65536):
                async with send:
                    dst.write(data)
                    await dst.drain()
        except ConnectionError:
            pass
        finally:
            dst.close()

    async def _commands(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter,
                        client: asyncio.StreamWriter, send: asyncio.Lock) -> None:
        identified = False
        continuing = False  # the next line continues a command after a literal
        while line := await reader.readline():
            if not continuing and (m := _COMMAND.match(line)):
                tag, name = m.group(1), m.group(2).upper().decode()
                with self._lock:
                    self.commands.append(name)
                if name == "ID":
                    with self._lock:
                        self.ids.append(m.group(3) or b"")
                    if self.refuse_id:
                        await self._answer(client, send, tag + b" NO ID not accepted here")
                        continue
                    identified = True
                elif name in ("SELECT", "EXAMINE") and self.gate and not identified:
                    with self._lock:
                        self.refused += 1
                    await self._answer(client, send, tag + b" " + UNSAFE_LOGIN)
                    continue
            up.write(line)
            literal = _LITERAL.search(line)
            if literal:
                up.write(await reader.readexactly(int(literal.group(1))))
            continuing = bool(literal)
            await up.drain()

    @staticmethod
    async def _answer(client: asyncio.StreamWriter, send: asyncio.Lock, reply: bytes) -> None:
        async with send:
            client.write(reply + b"\r\n")
            await client.drain()
