"""SQL for the home feed: fan-out on read, bounded index probes per followee.

A plain ``owner_id IN (followees) ORDER BY created_at DESC LIMIT n`` walks the global
``created_at`` index and filters by owner: ~1 ms when the followees post often, ~2 s when
they went quiet (``bench/bench_feed.py``, README). Here every followee costs one probe of the
``(owner_id, created_at DESC, id DESC)`` index whatever its history or the cursor's depth, and
only the final ``n`` rows are fetched whole.

The statement is built once per shape (first page, later page) with bound parameters: building
this nest of LATERAL subqueries and its cache key took more CPU than running it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Integer, Row, Select, bindparam, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from skills.music_streaming_basic.api import Track, list_item_columns, listable_condition
from skills.user_follow_system.api import followee_ids_query
from skills.user_profile.api import UserProfile

T = Track.__table__.c  # type: ignore[attr-defined]
P = UserProfile.__table__  # type: ignore[attr-defined]

Position = tuple[datetime, uuid.UUID]
"""A keyset position: ``(tracks.created_at, tracks.id)`` of the last item already seen."""


def _newest(after: bool, limit: Any, name: str) -> Any:
    """LATERAL: the newest ``limit`` listable ``(created_at, id)`` of the ``user_profiles`` row
    of the enclosing query (correlated), after the cursor (parameters ``after_created``,
    ``after_id``) when ``after``.

    ``listable_condition()`` sees that profile because ``tracks.owner_id = user_profiles.id``;
    its profile terms become a one-time filter, so a hidden owner costs one row check, not a
    scan of its tracks. Key columns only: with the partial index the probe is index-only.
    """
    probe = select(T.created_at, T.id).where(T.owner_id == P.c.id, listable_condition())
    if after:
        position = tuple_(
            bindparam("after_created", type_=T.created_at.type),
            bindparam("after_id", type_=T.id.type),
        )
        probe = probe.where(tuple_(T.created_at, T.id) < position)
    return probe.order_by(T.created_at.desc(), T.id.desc()).limit(limit).lateral(name)


def page_keys(*, after: bool) -> Select[Any]:
    """``(created_at, id)`` of the next ``limit`` feed items, newest first, in two steps
    (parameters ``follower``, ``limit`` and, when ``after``, the cursor's position).

    1. *heads*: each followee's newest listable track after the cursor (one index entry per
       followee), keeping the ``limit`` followees whose head is newest;
    2. up to ``limit`` entries from each of those followees only, cut to ``limit``.

    Step 2 is exact: every account with an item in the next ``limit`` has its head among
    them, and there can be at most ``limit`` such accounts. So the cost is one index
    descent per followee plus ``limit²`` entries, whatever the followees' history.
    """
    follower = cast(uuid.UUID, bindparam("follower", type_=T.owner_id.type))
    limit = bindparam("limit", type_=Integer)
    followees = followee_ids_query(follower, include_hidden=True).subquery("followees")
    head = _newest(after, 1, "head")
    heads = (
        select(P.c.id)
        .select_from(followees)
        .join(P, P.c.id == followees.c.following_id)
        .join(head, true())
        .order_by(head.c.created_at.desc(), head.c.id.desc())
        .limit(limit)
        .subquery("heads")
    )
    items = _newest(after, limit, "items")
    return (
        select(items.c.created_at, items.c.id)
        .select_from(heads)
        .join(P, P.c.id == heads.c.id)
        .join(items, true())
        .order_by(items.c.created_at.desc(), items.c.id.desc())
        .limit(limit)
    )


@cache
def page_query(*, after: bool) -> Select[Any]:
    """The list-item columns (:func:`list_item_columns`) for :func:`page_keys`, in feed order.
    Built once per shape and reused: only the parameters change between requests."""
    keys = page_keys(after=after).subquery("page")
    return (
        select(*list_item_columns())
        .join(keys, keys.c.id == T.id)
        .order_by(keys.c.created_at.desc(), keys.c.id.desc())
    )


async def page(
    session: AsyncSession | AsyncConnection,
    follower_id: uuid.UUID,
    *,
    after: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """The next ``limit`` listable tracks of the accounts ``follower_id`` follows, as
    :func:`list_item_columns` rows."""
    params: dict[str, Any] = {"follower": follower_id, "limit": limit}
    if after is not None:
        params["after_created"], params["after_id"] = after
    result = await session.execute(page_query(after=after is not None), params)
    return list(result.all())
