"""Steps 1 and 3 of the upload: issue a presigned PUT, then inspect what arrived and create
the track in one transaction. The API never proxies the bytes in ``s3`` mode."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import (
    DomainError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
)
from core.events import emit
from skills.music_streaming_basic import api as tracks
from skills.music_upload.analysis.errors import AnalysisError
from skills.music_upload.analysis.sniff import (
    HEAD_BYTES,
    check_declared_type,
    formats_for_content_type,
    normalise_content_type,
    sniff_format,
)
from skills.music_upload.models import UploadSession
from skills.music_upload.schemas import FinalizeUpload, InitiateUpload, UploadTicket
from skills.music_upload.settings import UploadSettings
from skills.user_profile import api as profiles

if TYPE_CHECKING:
    from core.kernel import Kernel

log = logging.getLogger("soundhive.upload")
SKILL = "music-upload"


class UploadGone(DomainError):
    status, code, title = 410, "UPLOAD_EXPIRED", "Upload expired"


class FileUploadFailed(DomainError):
    status, code, title = 422, "FILE_UPLOAD_FAILED", "File upload failed"


def upload_not_found() -> NotFound:
    return NotFound("No upload with that id.", code="UPLOAD_NOT_FOUND")


def settings_of(kernel: Kernel) -> UploadSettings:
    return kernel.skill_settings(SKILL)  # type: ignore[no-any-return]


async def initiate(
    kernel: Kernel, session: AsyncSession, owner_id: uuid.UUID, body: InitiateUpload
) -> UploadTicket:
    """Validate type and size, record the session, presign the PUT (bound to type and size)."""
    options = settings_of(kernel)
    content_type = normalise_content_type(body.content_type)
    if formats_for_content_type(content_type) is None:
        raise UnsupportedMediaType(
            f"'{body.content_type}' is not an accepted audio type "
            "(mpeg, wav, flac, ogg, aac, mp4).",
        )
    max_bytes = kernel.settings.max_upload_bytes  # SOUNDHIVE_MAX_UPLOAD_BYTES, 100 MiB default
    if body.file_size > max_bytes:
        raise PayloadTooLarge(f"Files may be at most {max_bytes} bytes.", max_bytes=max_bytes)
    now = datetime.now(UTC)
    upload_id = uuid.uuid4()
    key = f"uploads/{owner_id}/{upload_id}"
    async with session.begin():
        pending = await session.scalar(
            select(func.count())
            .select_from(UploadSession)
            .where(
                UploadSession.owner_id == owner_id,
                UploadSession.state == "pending",
                UploadSession.expires_at > now,  # type: ignore[arg-type]
            )
        )
        if (pending or 0) >= options.max_pending_per_user:
            raise RateLimited(
                f"You have {pending} unfinished uploads; finish or let them expire first.",
                code="TOO_MANY_UPLOADS",
                headers={"Retry-After": "60"},
            )
        ticket = await kernel.storage.presign_put(
            key,
            content_type=content_type,
            content_length=body.file_size,
            expires_in=options.url_expires_seconds,
        )
        session.add(
            UploadSession(
                id=upload_id,
                owner_id=owner_id,
                object_key=key,
                filename=body.filename,
                content_type=content_type,
                file_size=body.file_size,
                expires_at=now + timedelta(seconds=options.url_expires_seconds),
            )
        )
    return UploadTicket(
        upload_id=upload_id,
        upload_url=ticket.url,
        method=ticket.method,
        headers=ticket.headers,
        expires_in=ticket.expires_in,
    )


async def finalize(
    kernel: Kernel, session: AsyncSession, owner_id: uuid.UUID, body: FinalizeUpload
) -> tuple[uuid.UUID, bool]:
    """Returns (track id, created). Idempotent per upload: the session row is locked, so 20
    concurrent calls create exactly one track and all answer with it."""
    refusal: DomainError | None = None
    final = False
    delete_key: str | None = None
    async with profiles.transaction(kernel, session):
        upload = (
            await session.scalars(
                select(UploadSession).where(UploadSession.id == body.upload_id).with_for_update()
            )
        ).first()
        if upload is None or upload.owner_id != owner_id:
            raise upload_not_found()
        if upload.state == "finalized" and upload.track_id is not None:
            return upload.track_id, False
        if upload.state == "rejected":
            raise _refusal(upload.rejection_code, upload.rejection_detail)
        if upload.state == "expired" or upload.expires_at <= datetime.now(UTC):
            raise UploadGone("This upload expired; start a new one.")
        refusal, final = await _inspect(kernel, upload)
        if refusal is None:
            track = await tracks.create_track(
                session,
                owner_id=owner_id,
                object_key=upload.object_key,
                content_type=upload.content_type,
                file_size=upload.file_size,
                title=body.title,
                artist_name=body.artist_name,
                description=body.description,
                tags=body.tags,
                mood=body.mood,
                visibility=body.visibility,
            )
            upload.state, upload.track_id = "finalized", track.id
            emit(
                session, "track.uploaded", {"track_id": str(track.id), "upload_id": str(upload.id)}
            )
            return track.id, True
        if final:
            upload.state = "rejected"
            upload.rejection_code, upload.rejection_detail = refusal.instance_code, refusal.detail
            delete_key = upload.object_key
    if delete_key is not None:
        await _delete_quietly(kernel, delete_key)
    assert refusal is not None
    raise refusal


async def _inspect(kernel: Kernel, upload: UploadSession) -> tuple[DomainError | None, bool]:
    """Check the stored object: present, exact size, and really audio of the declared kind.

    Returns (refusal, final): a final refusal rejects the upload and deletes the object; a
    missing object is not final (the client may still PUT and finalize again).
    """
    info = await kernel.storage.head(upload.object_key)
    if info is None:
        missing = "The file has not been uploaded yet: PUT it to the upload_url first."
        return FileUploadFailed(missing), False
    if info.size != upload.file_size:
        detail = f"The stored file has {info.size} bytes, not the {upload.file_size} declared."
        return FileUploadFailed(detail), True
    head = await kernel.storage.read_range(upload.object_key, 0, min(HEAD_BYTES, info.size) - 1)
    sniffed = sniff_format(head)
    if sniffed is None:
        return UnsupportedMediaType("The file is not audio in an accepted format."), True
    try:
        check_declared_type(upload.content_type, sniffed)
    except AnalysisError as exc:
        return UnsupportedMediaType(exc.detail), True
    return None, False


def _refusal(code: str | None, detail: str | None) -> DomainError:
    if code == "UNSUPPORTED_MEDIA_TYPE":
        return UnsupportedMediaType(detail)
    return FileUploadFailed(detail)


async def _delete_quietly(kernel: Kernel, key: str) -> None:
    try:
        await kernel.storage.delete(key)
    except Exception as exc:  # the orphan clean-up retries
        log.warning("could not delete refused upload now: %s", type(exc).__name__)


__all__ = ["FileUploadFailed", "UploadGone", "finalize", "initiate"]
