"""The report's category titles and measure texts, for pages, mails, the console and the digest.

The one loader for every reader of the taxonomy outside the classifier. The deployment's report
is configured (``[report] path``; empty: the copy shipped with the project); the composition
root (``bot.runtime.Runtime.create``) opens it with :func:`use`, and the readers ask this
module, because the titles are wanted in templates, audit lines and the digest, where no
request or settings are at hand. One process serves one deployment, so one catalog per process.

Letters keep the taxonomy version they were classified under (``submissions.taxonomy_version``).
When the configured report changes, the category numbers start to mean other things: "3" under
the new report is not "3" under the old. So each report the service has run with is archived
(its taxonomy as JSON under ``var/taxonomies/``), and an old letter is named by the taxonomy it
was filed under. The classifier part is optional: without it pages and the digest still work,
with numbered names.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from handlers.classify.taxonomy import Taxonomy

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^t-[0-9a-f]{6,64}$")  # taxonomy.parse_report's names; also a file name


@dataclass(frozen=True)
class Catalog:
    """The configured report's taxonomy, and where the ones before it are kept."""

    current: Taxonomy | None
    archive: Path | None = None

    def of(self, version: str | None) -> Taxonomy | None:
        """The taxonomy a letter was classified under; the current one when ``version`` is
        empty (unclassified or machine mail) or is the current one; None when unknown."""
        if not version or self.current is None or version == self.current.version:
            return self.current
        return _archived(self.archive, version)

    def is_current(self, version: str | None) -> bool:
        return not version or self.current is None or version == self.current.version

    def titles(self, version: str | None = None) -> dict[str, str]:
        """Category id → title; {} without a taxonomy."""
        tax = self.of(version)
        return {c.id: c.title for c in tax.categories} if tax else {}

    def measure_texts(self, version: str | None = None) -> dict[str, str]:
        """Measure id → text; {} without a taxonomy."""
        tax = self.of(version)
        return {m.id: m.text for m in tax.measures} if tax else {}


def _load(report: Path | None) -> Taxonomy | None:
    try:
        from handlers.classify.taxonomy import load_taxonomy

        return load_taxonomy(report)
    except Exception:
        log.warning("taxonomy not available; categories shown by number", exc_info=True)
        return None


@lru_cache(maxsize=32)
def _archived(archive: Path | None, version: str) -> Taxonomy | None:
    """An earlier report's taxonomy: from the archive, or the shipped report's own."""
    if not _VERSION.match(version):
        return None
    try:
        from handlers.classify.taxonomy import Taxonomy, load_taxonomy
    except ImportError:
        return None
    if archive is not None:
        try:
            data = json.loads((archive / f"{version}.json").read_text(encoding="utf-8"))
            return Taxonomy.from_dict(data)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("archived taxonomy %s unreadable: %s", version, exc)
    shipped = load_taxonomy()
    return shipped if shipped.version == version else None


def _remember(tax: Taxonomy, archive: Path) -> None:
    """Write ``tax`` into the archive (once per version; atomic, so readers never see half)."""
    path = archive / f"{tax.version}.json"
    if path.exists():
        return
    try:
        archive.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=archive, prefix=f".{tax.version}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(tax.to_dict(), fh, ensure_ascii=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:  # letters still file; old ones would be named by number only
        log.warning("cannot archive taxonomy %s in %s: %s", tax.version, archive, exc)


_active: Catalog | None = None


def use(report: Path | None, archive: Path | None = None) -> Catalog:
    """Open the configured report (None: the shipped copy) as this process's catalog, and
    archive its taxonomy under ``archive`` so that it can still name this report's letters
    after the configuration points at another one."""
    global _active
    tax = _load(report)
    if tax is not None and archive is not None:
        _remember(tax, archive)
    _active = Catalog(tax, archive)
    return _active


def active() -> Catalog:
    """The catalog :func:`use` opened; the shipped report's until then (tests, tools)."""
    global _active
    if _active is None:
        _active = Catalog(_load(None))
    return _active


def taxonomy() -> Taxonomy | None:
    """The configured report's taxonomy, or None when the classifier part cannot provide it."""
    return active().current


def titles(version: str | None = None) -> dict[str, str]:
    """Category id → title under ``version`` (default: the configured report)."""
    return active().titles(version)


def measure_texts(version: str | None = None) -> dict[str, str]:
    """Measure id → text under ``version`` (default: the configured report)."""
    return active().measure_texts(version)
