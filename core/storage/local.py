"""The ``local`` backend: files under ``<data_dir>/objects``, served by the API itself.

Layout: ``objects/<key>`` holds the bytes, ``objects/.meta/<key>.json`` the content type and
ETag, ``objects/.tmp/`` uploads in flight. Keys never start a segment with ``.``, so the
internal folders cannot collide with objects. Writes go to a temporary file, are fsynced,
then published atomically (a hard link, so a signed upload cannot replace a finished
object; ``put_bytes`` replaces with ``os.replace``). Disk I/O runs in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, TypeVar
from urllib.parse import urlencode

from core.errors import DomainError, PayloadTooLarge
from core.settings import Settings
from core.storage import ObjectInfo, PresignedRequest
from core.storage.errors import ObjectExists, ObjectNotFound, UploadIncomplete, storage_failure
from core.storage.keys import (
    check_length,
    clean_download_name,
    expiry_seconds,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from core.storage.memo import PresignMemo, rounded_expiry
from core.storage.signing import Grant, UrlSigner

T = TypeVar("T")
served_url: ContextVar[str] = ContextVar("soundhive_served_url", default="")
"""Set per request by ``local_routes.ServedUrlMiddleware`` when no public URL is configured."""
ROUTE_PREFIX = "/storage/"
_WRITE_BUFFER = 1024 * 1024
_STALE_UPLOAD_SECONDS = 24 * 3600
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}


class LocalStorage:
    backend = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir) / "objects"
        self._base_url = (settings.public_url or "").rstrip("/")
        self._get_urls = PresignMemo()

    @functools.cached_property
    def signer(self) -> UrlSigner:
        """Built on first signature: reading (or, outside prod, creating) the secret is I/O."""
        return UrlSigner(self.settings.secret())

    # -- paths ---------------------------------------------------------------------------
    def path_of(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / ".meta" / f"{key}.json"

    @property
    def _tmp(self) -> Path:
        return self.root / ".tmp"

    def _lookup_missed(self) -> None:
        """A lookup found nothing: a missing object — unless the store's folder itself is not
        a folder (a file or a broken mount in its place). That is an outage (503), and saying
        "no such object" (404, or 422 at finalize) would send clients the wrong way. A folder
        that does not exist yet is just an empty store (it is made on first write)."""
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "object store is not a folder", str(self.root))

    async def _io(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking disk work in a thread; an ``OSError`` is an outage (503)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except DomainError:
            raise
        except OSError as exc:
            raise storage_failure(operation, exc) from exc

    # -- signed URLs ---------------------------------------------------------------------
    def signed_url(self, grant: Grant) -> str:
        """``<public_url>/storage/<key>?…&sig=…``. Without ``public_url`` the base is the
        address the current request reached the API at (``served_url``), and outside a
        request (a worker) the URL is relative to the API."""
        base = self._base_url or served_url.get()
        return f"{base}{ROUTE_PREFIX}{grant.key}?{urlencode(self.signer.query(grant))}"

    async def presign_put(
        self, key: str, *, content_type: str, content_length: int, expires_in: int | None = None
    ) -> PresignedRequest:
        validate_key(key)
        content_type = validate_content_type(content_type)
        check_length(content_length, self.settings.max_upload_bytes)
        seconds = expiry_seconds(expires_in, self.settings.presign_put_expires)
        grant = Grant("PUT", key, int(time.time()) + seconds, content_type, content_length)
        return PresignedRequest(
            url=self.signed_url(grant),
            method="PUT",
            headers={"Content-Type": content_type},
            expires_in=seconds,
        )

    async def presign_get(
        self, key: str, *, expires_in: int | None = None, download_name: str | None = None
    ) -> str:
        validate_key(key)
        seconds = expiry_seconds(expires_in, self.settings.presign_get_expires)
        name = clean_download_name(download_name) if download_name else ""
        expires_at = rounded_expiry(seconds)  # see core/storage/memo.py
        memo_key = (self._base_url or served_url.get(), key, name, expires_at)
        url = self._get_urls.get(memo_key)
        if url is None:
            url = self.signed_url(Grant("GET", key, expires_at, download_name=name))
            self._get_urls.put(memo_key, url, expires_at)
        return url

    # -- reads ---------------------------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        return await self._io("head", self._head, key)

    def _head(self, key: str) -> ObjectInfo | None:
        try:
            stat = self.path_of(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            self._lookup_missed()
            return None
        if not S_ISREG(stat.st_mode):
            return None
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            meta = {}  # published a moment ago, or written by hand: still an object
        etag = (
            meta.get("etag")
            or hashlib.md5(
                f"{stat.st_mtime_ns}-{stat.st_size}".encode(), usedforsecurity=False
            ).hexdigest()
        )
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            content_type=meta.get("content_type") or "application/octet-stream",
            etag=etag,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    async def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        validate_key(key)
        if start < 0:
            raise ValueError("read_range needs start >= 0")
        if end_inclusive < start:
            return b""  # an empty range, e.g. the first size - 1 bytes of an empty object
        return await self._io("read", self._read_range, key, start, end_inclusive)

    def _read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        try:
            with self.path_of(key).open("rb") as handle:
                handle.seek(start)
                return handle.read(end_inclusive - start + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._lookup_missed()
            raise ObjectNotFound(f"No object {key!r}.") from None

    async def download_to(self, key: str, path: Path) -> int:
        validate_key(key)
        return await self._io("download", self._download_to, key, Path(path))

    def _download_to(self, key: str, path: Path) -> int:
        source = self.path_of(key)
        if not source.is_file():
            self._lookup_missed()
            raise ObjectNotFound(f"No object {key!r}.")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return path.stat().st_size

    async def iter_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        pending = [prefix.rpartition("/")[0]]
        while pending:
            folder = pending.pop()
            files, folders = await self._io("list", self._scan, folder)
            for sub in reversed(folders):
                if (sub + "/").startswith(prefix) or prefix.startswith(sub + "/"):
                    pending.append(sub)
            for key in files:
                if key.startswith(prefix):
                    info = await self._io("list", self._head, key)
                    if info is not None:
                        yield info

    def _scan(self, folder: str) -> tuple[list[str], list[str]]:
        """Keys of the files and the folders directly in ``folder`` (relative), sorted."""
        files: list[str] = []
        folders: list[str] = []
        try:
            entries = sorted(os.scandir(self.root / folder), key=lambda entry: entry.name)
        except (FileNotFoundError, NotADirectoryError):
            self._lookup_missed()
            return files, folders
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .meta, .tmp, and anything that is not an object key
            key = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir(follow_symlinks=False):
                folders.append(key)
            elif entry.is_file():
                files.append(key)
        return files, folders

    # -- writes --------------------------------------------------------------------------
    async def receive(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, length: int
    ) -> ObjectInfo:
        """Stream an upload of exactly ``length`` bytes into a new object (write-once).

        More bytes than signed stop the transfer at once (413); fewer fail it (400). Either
        way nothing is left behind.
        """
        validate_key(key)
        tmp = await self._io("put", self._new_tmp)
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        try:
            handle = await self._io("put", tmp.open, "wb")
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    received += len(chunk)
                    if received > length:
                        raise PayloadTooLarge(
                            f"The upload is larger than the {length} bytes it was signed for."
                        )
                    digest.update(chunk)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BUFFER:
                        await self._io("put", handle.write, bytes(buffer))
                        buffer.clear()
                if received < length:
                    raise UploadIncomplete(
                        f"Received {received} of the {length} bytes the URL was signed for."
                    )
                await self._io("put", _finish, handle, bytes(buffer))
            finally:
                handle.close()
            meta = {"content_type": content_type, "etag": digest.hexdigest(), "size": length}
            await self._io("put", self._publish, tmp, key, meta, False)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        info = await self.head(key)
        assert info is not None
        return info

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        validate_key(key)
        content_type = validate_content_type(content_type)
        await self._io("put", self._put_bytes, key, bytes(data), content_type)
        info = await self.head(key)
        assert info is not None
        return info

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        tmp = self._new_tmp()
        try:
            with tmp.open("wb") as handle:
                _finish(handle, data)
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            meta = {"content_type": content_type, "etag": etag, "size": len(data)}
            self._publish(tmp, key, meta, True)
        finally:
            tmp.unlink(missing_ok=True)

    def _new_tmp(self) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp / f"{uuid.uuid4().hex}.part"

    def _publish(self, tmp: Path, key: str, meta: dict[str, Any], replace: bool) -> None:
        """Make ``tmp`` the object ``key`` in one step, then write its metadata.

        A signed upload links (never replaces) and rolls back if the metadata cannot be
        written, so a failed upload can be retried with the same URL.
        """
        target, meta_path = self.path_of(key), self._meta_path(key)
        if not replace and target.exists():
            raise ObjectExists(f"Object {key!r} already exists; uploads are write-once.")
        for _ in range(3):  # a concurrent delete may prune the folder we just made
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                meta_path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ObjectExists(f"Key {key!r} clashes with an existing object.") from None
            try:
                if replace:
                    os.replace(tmp, target)
                else:
                    _link_new(tmp, target)
                break
            except FileExistsError:
                raise ObjectExists(
                    f"Object {key!r} already exists; uploads are write-once."
                ) from None
            except IsADirectoryError:
                raise ObjectExists(f"Key {key!r} clashes with an existing key prefix.") from None
            except FileNotFoundError:
                continue
        else:
            raise OSError(errno.EAGAIN, "folder removed while publishing")
        try:
            _write_atomically(meta_path, json.dumps(meta).encode())
        except OSError:
            if not replace:
                target.unlink(missing_ok=True)
            raise

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._io("delete", self._delete, key)

    def _delete(self, key: str) -> None:
        meta_root = self.root / ".meta"
        for path, top in ((self.path_of(key), self.root), (self._meta_path(key), meta_root)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()
            _prune_empty(path.parent, top)

    # -- lifecycle -----------------------------------------------------------------------
    async def ensure_ready(self) -> None:
        await self._io("ensure_ready", self._ensure_ready)

    def _ensure_ready(self) -> None:
        for folder in (self.root, self.root / ".meta", self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - _STALE_UPLOAD_SECONDS
        for leftover in self._tmp.iterdir():  # uploads cut off by a crash
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    async def check(self) -> None:
        await self._io("check", self._check)

    def _check(self) -> None:
        """Write, fsync and remove a probe file: the disk is present and writable."""
        probe = self._new_tmp()
        try:
            with probe.open("wb") as handle:
                _finish(handle, b"ok")
        finally:
            probe.unlink(missing_ok=True)

    async def aclose(self) -> None:
        return None


def _finish(handle: Any, tail: bytes) -> None:
    handle.write(tail)
    handle.flush()
    os.fsync(handle.fileno())


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        with tmp.open("wb") as handle:
            _finish(handle, data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, target: Path) -> None:
    """Publish without ever replacing: ``link`` fails if the target exists. Filesystems
    without hard links fall back to an existence check and a rename."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.replace(tmp, target)


def _prune_empty(folder: Path, top: Path) -> None:
    """Remove folders left empty by a delete, up to (not including) the root."""
    top = top.resolve()
    while folder.resolve() != top and top in folder.resolve().parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
