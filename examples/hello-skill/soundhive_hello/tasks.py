"""The example skill's actor: counts a greeting once per event, however often delivered."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from soundhive_hello.models import GreetingTally


async def tally_greeting(
    kernel: Any, *, id: str, type: str, payload: dict[str, Any], occurred_at: str
) -> None:
    name = payload["name"]
    event_id = uuid.UUID(id)
    async with kernel.db.session() as session, session.begin():
        table = GreetingTally.__table__
        statement = insert(table).values(name=name, count=1, last_event_id=event_id)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.name],
            set_={"count": table.c.count + 1, "last_event_id": event_id},
            where=table.c.last_event_id.is_distinct_from(event_id),
        )
        await session.execute(statement)
    await kernel.cache.invalidate("hello", name)
