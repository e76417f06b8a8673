"""The attachment store: files under their SHA-256 in the layout existing deployments hold."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage.blobs import BlobStore

PHOTO = b"\xff\xd8\xff\xe0" + "小区门口的路灯".encode() * 2000  # a JPEG's start, and bulk


def test_a_file_is_kept_once_where_earlier_versions_put_it(tmp_path: Path):
    blobs = BlobStore(tmp_path)
    sha = hashlib.sha256(PHOTO).hexdigest()
    assert blobs.put(PHOTO) == sha and blobs.put(PHOTO) == sha
    assert blobs.path(sha) == tmp_path / sha[:2] / sha  # the layout files on disk already use
    assert blobs.path(sha).read_bytes() == PHOTO
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [sha]  # no temporary left


def test_the_same_photo_posted_at_once_is_stored_for_every_writer(tmp_path: Path):
    """The form writes uploads in threads: two citizens sending one photo must both succeed."""
    blobs = BlobStore(tmp_path)
    for round_ in range(20):
        data = PHOTO + str(round_).encode()
        with ThreadPoolExecutor(8) as pool:
            digests = list(pool.map(blobs.put, [data] * 8))
        assert set(digests) == {hashlib.sha256(data).hexdigest()}
        assert blobs.path(digests[0]).read_bytes() == data
    assert not list(tmp_path.rglob("*.tmp"))


def test_only_a_digest_names_a_file(tmp_path: Path):
    blobs = BlobStore(tmp_path / "att")
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31, "", "ab" * 32 + "/x"):
        with pytest.raises(ValueError):
            blobs.path(bad)


def test_remove_deletes_the_files_and_counts_those_that_were_there(tmp_path: Path):
    blobs = BlobStore(tmp_path)
    kept, gone = blobs.put(b"%PDF-1.4 kept"), blobs.put(b"%PDF-1.4 gone")
    assert blobs.remove([gone, gone, "0" * 64]) == 1
    assert not blobs.path(gone).exists() and blobs.path(kept).exists()
