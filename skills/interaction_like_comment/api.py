"""The public face of ``interaction-like-comment`` for skills that declare it in ``requires``
(admin-moderation hides and deletes comments; notifications read them).

:func:`get_comment` and :func:`set_comment_hidden` take *your* session and run inside *your*
transaction; they never commit. :func:`remove_comment` runs its own transaction.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from core.events import emit
from skills.interaction_like_comment import repository as _repo
from skills.interaction_like_comment import service as _service
from skills.interaction_like_comment.models import Comment, Like
from skills.interaction_like_comment.schemas import CommentRead, comment_read

if TYPE_CHECKING:
    from core.kernel import Kernel

__all__ = [
    "Comment",
    "CommentRead",
    "Like",
    "comment_not_found",
    "get_comment",
    "remove_comment",
    "set_comment_hidden",
]

comment_not_found = _service.comment_not_found


async def get_comment(session: AsyncSession, comment_id: uuid.UUID) -> CommentRead | None:
    """Any comment by id, hidden or not, whoever wrote it (for moderation); ``None`` if absent."""
    row = await _repo.get_comment(session, comment_id)
    return comment_read(row) if row is not None else None


async def set_comment_hidden(session: AsyncSession, comment_id: uuid.UUID, hidden: bool) -> bool:
    """Hide or unhide a comment (hidden ones show only to their author and moderators); emits
    ``comment.hidden`` / ``comment.unhidden``. ``True`` if it changed; 404
    ``COMMENT_NOT_FOUND`` for an unknown id. Counts are unaffected (they count rows)."""
    if not await _repo.set_hidden(session, comment_id, hidden):
        if await _repo.get_comment(session, comment_id) is None:
            raise comment_not_found()
        return False
    emit(
        session,
        "comment.hidden" if hidden else "comment.unhidden",
        {"comment_id": str(comment_id)},
    )
    return True


async def remove_comment(
    kernel: Kernel, session: AsyncSession, comment_id: uuid.UUID, *, actor_id: uuid.UUID | None
) -> int:
    """Delete a comment and its replies (moderation), in its own transaction on ``session``;
    returns how many rows went (0 if it did not exist). Emits ``comment.deleted``."""
    return await _service.remove_comment(kernel, session, comment_id, actor_id=actor_id)
