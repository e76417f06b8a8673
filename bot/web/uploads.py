"""Reading the public form's body: text fields and up to N attachments, with size limits.

The form is ``multipart/form-data`` once it accepts files, so aiohttp's ``client_max_size`` (which
only guards ``request.post()``) no longer protects us. We read ``request.multipart()`` part by part
and count as we go: text fields together may not exceed ``web.max_body_bytes`` (1 MB), each file
``web.max_upload_bytes`` (10 MB); going over stops reading at once and becomes a 413 page. A plain
url-encoded post still goes through ``request.post()`` and its 1 MB limit.

A file's type is decided by its content (magic bytes, via the ``filetype`` library), never by its
name or the browser's Content-Type: only images (JPEG, PNG, GIF, WebP, HEIC/HEIF) and PDF are kept,
and the kept name ends in that type's extension (``photo.hta`` holding a PNG is kept as
``photo.png``), so a file saved from the console opens as what it is, never as a program.
Accepted files are written to the attachment store at POST time (``storage.blobs``,
content-addressed) and listed in the raw payload; the store step creates the
Attachment rows from that list.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import unquote

import filetype
from aiohttp import BodyPartReader, MultipartReader, web

from storage.blobs import BlobStore

ALLOWED_TYPES = {
    "image/jpeg": "JPG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "application/pdf": "PDF",
}
# The extensions a kept file's name may end in, the first one given when its own does not fit.
EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/heic": (".heic",),
    "image/heif": (".heif", ".heic"),
    "application/pdf": (".pdf",),
}
CHUNK = 64 * 1024


class TooLarge(Exception):
    """The body is over a limit; ``text`` tells the citizen which and what to do."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass
class Upload:
    filename: str
    content_type: str  # detected from the content; "" when not an accepted type
    data: bytes

    def describe(self, sha256: str) -> dict[str, Any]:
        """The entry kept in the raw payload's ``attachments`` list."""
        return {"filename": self.filename, "content_type": self.content_type,
                "sha256": sha256, "size": len(self.data)}


@dataclass
class Limits:
    text_bytes: int
    file_bytes: int
    files: int

    @property
    def total_bytes(self) -> int:
        # Multipart framing is small; 64 KiB of slack keeps an honest maximal post under the limit.
        return self.text_bytes + self.files * self.file_bytes + 64 * 1024


@dataclass
class FormBody:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)


def detect_type(data: bytes) -> str:
    """The MIME type of an accepted kind of file, judged by content; "" for anything else."""
    kind = filetype.guess(data[:8192])
    mime = kind.mime if kind is not None else ""
    return mime if mime in ALLOWED_TYPES else ""


def _unquote(name: str) -> str:
    """Some clients percent-encode a UTF-8 file name (RFC 7578 §4.2 leaves it open); browsers
    send it raw. Decode only an all-ASCII name that decodes to non-ASCII UTF-8."""
    if "%" not in name or not name.isascii():
        return name
    try:
        decoded = unquote(name, errors="strict")
    except UnicodeDecodeError:
        return name
    return decoded if not decoded.isascii() else name


def safe_filename(name: str) -> str:
    """The base name only (browsers on Windows may send a full path), printable, at most 200."""
    base = PureWindowsPath(PurePosixPath(_unquote(name)).name).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable())
    return base.strip()[-200:] or "附件"


def name_for_type(name: str, mime: str) -> str:
    """``name`` ending in an extension of its detected type: a fitting one is kept (any case),
    another is replaced (``a.png.hta`` → ``a.png``), a missing one added. Unchanged when the
    type was not accepted (the file is refused, and its name is shown as the citizen chose it)."""
    allowed = EXTENSIONS.get(mime)
    if not allowed:
        return name
    stem, dot, suffix = name.rpartition(".")
    if dot and stem and f".{suffix.lower()}" in allowed:
        return name
    base = stem if dot and stem else name
    if base.lower().endswith(allowed):
        return base
    return base + allowed[0]


async def _read_limited(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    buf = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise TooLarge(too_large)
    return bytes(buf)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


# A multipart body whose first part was read already (the console's CSRF check reads the
# ``csrf`` field first, bot/web/console/csrf.py): the rest is read from the same reader.
MULTIPART: web.RequestKey[MultipartReader] = web.RequestKey("multipart_reader", MultipartReader)


async def _read_multipart(request: web.Request, limits: Limits) -> FormBody:
    body = FormBody()
    text_left = limits.text_bytes
    reader = request.get(MULTIPART) or await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # nested multipart is not something our form sends
        if part.filename is None:
            data = await _read_limited(
                part, text_left, f"填写的文字超过了大小限制（{_mb(limits.text_bytes)}）。请删减后再提交。")
            text_left -= len(data)
            body.fields[part.name or ""] = data.decode(part.get_charset("utf-8"), "replace")
            continue
        name = safe_filename(part.filename)
        data = await _read_limited(
            part, limits.file_bytes,
            f"附件“{name}”超过了 {_mb(limits.file_bytes)}。请压缩图片或拆分文件后再提交。")
        if not data and not part.filename:
            continue  # a file input left empty
        if len(body.files) >= limits.files + 1:
            raise TooLarge(f"附件太多了：最多可以上传 {limits.files} 个文件。")
        mime = detect_type(data)
        body.files.append(Upload(name_for_type(name, mime), mime, data))
    return body


async def read_form(request: web.Request, limits: Limits) -> FormBody:
    """The posted fields and files; raises :class:`TooLarge` when a limit is exceeded."""
    if request.content_length is not None and request.content_length > limits.total_bytes:
        raise TooLarge(
            f"提交的内容太大了：文字不超过 {_mb(limits.text_bytes)}，"
            f"附件最多 {limits.files} 个、每个不超过 {_mb(limits.file_bytes)}。")
    if request.content_type == "multipart/form-data":
        try:
            return await _read_multipart(request, limits)
        except (ValueError, LookupError, AssertionError) as exc:
            # aiohttp's reader raises these on a broken body (no boundary, bad framing, unknown
            # charset): the sender's fault, answered with the 400 page, not ours.
            raise web.HTTPBadRequest() from exc
    try:
        data = await request.post()
    except web.HTTPRequestEntityTooLarge as exc:
        raise TooLarge(f"填写的文字超过了大小限制（{_mb(limits.text_bytes)}）。请删减后再提交。") from exc
    except (ValueError, LookupError) as exc:  # e.g. an unknown charset: the sender's fault
        raise web.HTTPBadRequest() from exc
    return FormBody(fields={k: v for k, v in data.items() if isinstance(v, str)})


def file_errors(files: list[Upload], max_files: int) -> str | None:
    """A message about the attachments a citizen can act on, or None when they are fine."""
    if len(files) > max_files:
        return f"最多可以上传 {max_files} 个附件，您选择了 {len(files)} 个。请减少后重新选择。"
    wrong = [f.filename for f in files if not f.content_type]
    if wrong:
        kinds = "、".join(dict.fromkeys(ALLOWED_TYPES.values()))
        names = "、".join(f"“{n}”" for n in wrong)
        return f"{names}不是图片或 PDF 文件，无法上传。请只选择 {kinds} 格式的文件。"
    return None


async def store_files(blobs: BlobStore, files: list[Upload]) -> list[dict[str, Any]]:
    """Write the files to the attachment store (off the event loop); their payload entries."""
    entries = []
    for upload in files:
        digest = await asyncio.to_thread(blobs.put, upload.data)
        entries.append(upload.describe(digest))
    return entries
