"""The running service's shared parts, built once from the settings and passed in.

Sources, workers and web views all need the same few things: the database, the classifier, the
mail templates, the signing secret, and a way to wake the workers when new work was committed.
``Runtime`` holds them (the aiohttp polls demo's "app keys" idea, without a global).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from bot.config import CommissionSettings, ReportSettings, Settings
from bot.metrics import Metrics
from handlers import categories
from handlers.step import Context, LoopPolicy
from storage.blobs import BlobStore

if TYPE_CHECKING:  # the database layer is imported where a Runtime is made (see create)
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from handlers.repeats import RepeatIndex, Shingler
    from storage.db import Sessions

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
log = logging.getLogger(__name__)


@dataclass
class WorkerState:
    """What /healthz reports for one background worker (kept by ``bot.workers.runner``)."""

    state: str = "starting"
    last_success: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
        }


def identity(settings: Settings | None = None) -> dict[str, Any]:
    """Template globals for every page and mail: who runs the service (``commission``: name,
    phone, postal address, published mailbox) and the report it takes feedback on (``report``:
    title, url). None: the defaults, which are the 2021 report's."""
    if settings is None:
        return {"commission": CommissionSettings(), "report": ReportSettings()}
    return {"commission": settings.commission, "report": settings.report}


def mail_templates(settings: Settings | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        # As for the web pages (bot/web/app.py): templates change only with a deploy, and the
        # two stat() calls of every acknowledgement were a fifth of its rendering.
        auto_reload=False,
    )
    env.globals.update(identity(settings))
    return env


@dataclass
class Foreground:
    """When citizens last posted a letter, so that background work can step aside.

    A form POST waits for its letter's commit; the intake worker filing letters in the same
    process takes the event loop and SQLite's one write slot from it, which under a rush made
    the pages several times slower (p99 from under 50 ms to about 200). Filing can wait a few
    seconds without anyone noticing (the letter is stored, its number shown, the status page
    says it is being filed); a citizen waiting for the page notices at once. So the worker
    waits for a quiet moment, but never longer than ``longest``: under a sustained rush both
    make progress."""

    last: float = 0.0

    def touch(self) -> None:
        self.last = time.monotonic()

    def busy(self, quiet: float = 0.2) -> bool:
        """A citizen posted a letter less than ``quiet`` seconds ago."""
        return time.monotonic() - self.last < quiet

    async def wait_quiet(self, quiet: float = 0.2, longest: float = 3.0) -> None:
        deadline = time.monotonic() + longest
        while (idle := time.monotonic() - self.last) < quiet and time.monotonic() < deadline:
            await asyncio.sleep(max(quiet - idle, 0.01))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: Sessions
    secret: bytes
    templates: jinja2.Environment
    classifier_holder: Any = None
    intake_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    foreground: Foreground = field(default_factory=Foreground)
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when the service stops: worker loops finish their current step and return, so that
    # no task is cancelled in the middle of a database call.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    workers: dict[str, WorkerState] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    # The open cases' repeat index (bot/repeat_index.py), built by the intake worker before it
    # files; None until then (and in commands that file nothing).
    repeats: RepeatIndex | None = None
    # Called when what exists now will live as long as the process: after start, and after the
    # repeat index is built (its signatures, and the modules it imports, scipy's among them).
    # ``serve`` sets it to :func:`freeze_heap`; tests, which start many services in one
    # process, leave it doing nothing.
    settle: Callable[[], None] = field(default=lambda: None)

    @classmethod
    def create(cls, settings: Settings, *, with_classifier: bool = True) -> Runtime:
        # Here, not at the top: the intake's prepare processes import this module for
        # pipeline_context and never open the database (SQLAlchemy is about 22 MB).
        from storage.db import make_engine, sessionmaker

        engine = make_engine(settings.database.url)
        categories.use(settings.report_file, Path(settings.var_dir) / "taxonomies")
        holder = None
        if with_classifier:
            holder = load_classifier_holder(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessionmaker(engine),
            secret=settings.secret(),
            templates=mail_templates(settings),
            classifier_holder=holder,
        )

    @property
    def blobs(self) -> BlobStore:
        """The attachment files (``storage.blobs``) under ``intake.attachments_dir``."""
        return BlobStore(self.settings.path(self.settings.intake.attachments_dir))

    def request_stop(self) -> None:
        self.stopping.set()
        self.intake_wakeup.set()
        self.outbox_wakeup.set()

    def worker(self, name: str) -> WorkerState:
        return self.workers.setdefault(name, WorkerState())

    def context(self, session: AsyncSession) -> Context:
        return pipeline_context(self.settings, session, secret=self.secret,
                                templates=self.templates, classifier_holder=self.classifier_holder,
                                repeats=self.repeats,
                                shingler=self.repeats.shingler if self.repeats is not None else None)

    async def close(self) -> None:
        await self.sessions.close()
        await self.engine.dispose()


def freeze_heap() -> None:
    """Collect, then freeze what is left: the garbage collector's full collections no longer
    walk it. Under a rush of letters they did, 10 times in 10 s, for 50-125 ms each, while
    every request waited (``bench/web_form.py --sustained``'s p99): the modules imported
    after start (the repeat index's datasketch brought 350 of scipy's until it was computed
    with numpy), then the index itself."""
    gc.collect()
    gc.freeze()
    trim_heap()


def _glibc() -> Any:
    """The C library, when it is glibc (its malloc is what the two calls below tune); None
    elsewhere."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no C library to load: nothing to tune
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``). Setting up
    the repeat index and the classifier reads the shipped letters once; what that allocated is
    free afterwards but stayed in the process's RSS (3-10 MB) until trimmed."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


_M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` malloc arenas, as ``MALLOC_ARENA_MAX=2`` sets them. glibc gives a
    thread that allocates while another holds the heap an arena of its own; ``serve`` runs a
    dozen threads (the database's writing thread, aiosqlite's one per connection, asyncio's
    pool) and their half-empty arenas added 8 MB to its RSS in 1,000 letters. Called before
    the threads start."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, arenas)


def loop_policy_for(settings: Settings, secret: bytes) -> LoopPolicy:
    """Which mail is our own: the sender address, the mailbox's login, a Message-ID signed with
    ``secret`` (never a domain: see handlers.loop_guard)."""
    own = {settings.smtp.from_addr.lower()}
    if settings.imap.user and "@" in settings.imap.user:
        own.add(settings.imap.user.lower())
    return LoopPolicy(own_addresses=frozenset(own), secret=secret)


def pipeline_context(settings: Settings, session: AsyncSession | None, *, secret: bytes,
                     templates: jinja2.Environment, classifier_holder: Any,
                     repeats: RepeatIndex | None = None,
                     shingler: Shingler | None = None) -> Context:
    """What the pipeline steps need. ``session`` is None only for ``pipeline.prepare``, which
    runs outside any transaction (in a thread or a worker process). ``repeats``: the service's
    repeat index; ``shingler``: its shingler, or a prepare process's own."""
    s = settings
    return Context(
        session=session,  # type: ignore[arg-type]
        secret=secret,
        public_url=s.web.public_url,
        from_addr=s.smtp.from_addr,
        from_name=s.smtp.from_name,
        loop_policy=loop_policy_for(s, secret),
        message_id_domain=s.message_id_domain,
        classifier_holder=classifier_holder,
        review_threshold=s.classifier.review_threshold,
        restrict_threshold=s.classifier.restrict_threshold,
        tracking_prefix=s.intake.tracking_prefix,
        acks_per_sender_per_day=s.intake.acks_per_sender_per_day,
        accept_days=s.intake.accept_days,
        handle_days=s.intake.handle_days,
        timezone=s.digest.timezone,
        attachments_dir=Path(s.intake.attachments_dir),
        max_message_bytes=s.intake.max_message_bytes,
        templates=templates,
        sms=s.sms.enabled,
        repeats=repeats,
        shingler=shingler,
        repeat_window_days=s.repeats.window_days,
        phone_area=s.repeats.phone_area,
        urgent_duty=tuple(s.urgent.duty),
    )


class _LazyHolder:
    """The classifier holder, imported and created when a letter first needs the classifier
    in this process: with preparation in worker processes (``[intake] prepare_processes``)
    that is never, and the service does not carry the model's 100 MB (numpy, the jieba
    dictionary, the model's arrays)."""

    def __init__(self, model_dir: Path, report: Path | None = None) -> None:
        self._model_dir = model_dir
        self._report = report
        self._holder: Any = None
        self._missing = False
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._holder is None and not self._missing:
            with self._lock:
                if self._holder is None and not self._missing:
                    try:
                        from handlers.classify import ClassifierHolder
                    except ImportError:
                        log.warning("classifier not available; submissions stay unclassified")
                        self._missing = True
                        return None
                    self._holder = ClassifierHolder(self._model_dir, report=self._report)
        return None if self._holder is None else self._holder.get()


def load_classifier_holder(settings: Settings) -> Any:
    """The classifier, if that part is installed; otherwise submissions stay unclassified."""
    return _LazyHolder(Path(settings.classifier.model_dir), settings.report_file)
