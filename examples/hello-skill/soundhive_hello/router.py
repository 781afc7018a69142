"""HTTP routes of the example skill (mounted under /api/v1 by the kernel)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from core.auth import CurrentPrincipal
from core.db import SessionDep
from core.events import emit
from soundhive_hello.models import Greeting, GreetingTally

router = APIRouter(prefix="/hello", tags=["hello"])


class GreetingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422, never ignored

    # no control characters: PostgreSQL cannot store NUL, and nobody is called "\n"
    name: Annotated[
        str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$", examples=["world"])
    ]


class TallyOut(BaseModel):
    name: str
    count: int


@router.post("/greetings", status_code=201, response_model=TallyOut)
async def greet(body: GreetingIn, principal: CurrentPrincipal, session: SessionDep) -> TallyOut:
    """Store a greeting and emit ``hello.greeted`` in the same transaction."""
    async with session.begin():
        greeting = Greeting(name=body.name, author_sub=principal.sub)
        session.add(greeting)
        await session.flush()
        emit(session, "hello.greeted", {"greeting_id": str(greeting.id), "name": body.name})
    return TallyOut(name=body.name, count=0)


@router.get("/greetings/{name}", response_model=TallyOut)
async def tally(name: str, request: Request, session: SessionDep) -> TallyOut:
    """The tally kept by the actor, read through the skill's own cache namespace."""

    async def load() -> dict[str, object]:
        row = await session.get(GreetingTally, name)
        return {"name": name, "count": row.count if row else 0}

    data = await request.app.state.kernel.cache.get_or_set("hello", name, load)
    return TallyOut.model_validate(data)
